"""The device API's OpenAPI document, served at /device/v1/openapi.json: it
lists every route the application has under /device/v1, and schemathesis
checks the live API against it: requests generated from the document never
cause a server error, and every response has a documented status and content
type and a body that matches its schema.

The event stream (a long-lived response) is left out of the generated
requests; each other operation runs with generated path parameters (mostly
unknown IDs) and, where it has one, with the calling device's own ID.
"""

from __future__ import annotations

import re
from typing import Any

import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ..support.schema_run import check_operation
from .test_approvals import enrolled

PREFIX = "/device/v1"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 8


def test_the_document_lists_every_device_api_route(idp: Any) -> None:
    served = requests.get(f"{idp.url}{PREFIX}/openapi.json", timeout=30)
    assert served.status_code == 200
    document = served.json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": f"{idp.url}{PREFIX}"}]
    routed = {
        (method, re.sub(r"<(\w+)>", r"{\1}", rule.rule.removeprefix(PREFIX)))
        for rule in idp.app.url_map.iter_rules()
        if rule.rule.startswith(PREFIX + "/") and rule.rule != f"{PREFIX}/openapi.json"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert routed == documented
    # One blueprint serves them all.
    endpoints = {r.endpoint for r in idp.app.url_map.iter_rules() if r.rule.startswith(PREFIX)}
    assert {endpoint.split(".")[0] for endpoint in endpoints} == {"device_api"}


def test_live_api_matches_its_document(idp: Any) -> None:
    _user, device = enrolled(idp, email="erika@example.org")
    document = requests.get(f"{idp.url}{PREFIX}/openapi.json", timeout=30).json()
    base_url = document["servers"][0]["url"]
    headers = {"Authorization": f"Bearer {device.token}"}
    known = {"device_id": device.device_id}

    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in document["paths"].values())
    session = requests.Session()
    for operation in operations:
        if operation.path == "/events":
            continue
        params = [p.name for p in operation.path_parameters]
        fixed: list[dict[str, Any] | None] = [None]
        if params and set(params) <= set(known):
            fixed.append({name: known[name] for name in params})
        check_operation(
            operation, fixed, base_url=base_url, session=session, headers=headers,
            checks=CHECKS, examples=EXAMPLES,
        )  # fmt: skip
    # The device is still there: nothing generated could sign an action.
    assert device.call("GET", "/status").status_code == 200
