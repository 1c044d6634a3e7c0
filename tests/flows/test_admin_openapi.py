"""The admin API's OpenAPI document, checked against the live API with
schemathesis: requests generated from the document never cause a server
error, and every response has a documented status, content type, headers and
a body that matches its schema.

Each operation runs twice: with generated path parameters (mostly unknown
IDs, so 404s) and with the IDs of real objects (a client, a user and their
device), so that the successful responses are checked too.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ..support.schema_run import check_operation
from .test_account_devices import direct_login
from .test_admin_api import automation
from .test_approvals import enrolled
from .test_sessions import open_sids

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]
EXAMPLES = 8


def test_live_api_matches_its_document(idp: Any) -> None:
    api = automation(idp)
    user, device = enrolled(idp, email="erika@example.org")
    known_client, _secret = idp.add_client(client_id="known-client")
    direct_login(idp, user)  # a login session, for the session operations
    [sid] = open_sids(idp, user.id)
    known = {"client_id": known_client, "sub": user.sub, "device_id": device.device_id, "sid": sid}
    served = requests.get(f"{idp.url}/admin/api/v1/openapi.json", timeout=30)
    assert served.status_code == 200
    document = served.json()
    assert document["openapi"].startswith("3.1")
    base_url = document["servers"][0]["url"]
    assert base_url == f"{idp.url}/admin/api/v1"
    headers = {"Authorization": f"Bearer {api.token}"}

    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in document["paths"].values())
    session = requests.Session()
    for operation in operations:
        params = [p.name for p in operation.path_parameters]
        fixed = [None, {name: known[name] for name in params}] if params else [None]
        check_operation(
            operation, fixed, base_url=base_url, session=session, headers=headers,
            checks=CHECKS, examples=EXAMPLES,
        )  # fmt: skip

    # The export's JSON lines: each one an AuditEvent as the document says.
    export = session.get(f"{base_url}/audit/export", headers=headers, timeout=30)
    assert export.status_code == 200
    validator = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/AuditEvent", "components": document["components"]}
    )
    lines = export.text.splitlines()
    assert lines
    for line in lines:
        validator.validate(json.loads(line))
