"""The admin API's declarations: every route is in the document, every
reference resolves, and the request models refuse what the code cannot take."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from pydantic import ValidationError

from idp.admin import schemas
from idp.admin.api import api, bp

PREFIX = "/admin/api/v1"


def document() -> dict[str, Any]:
    return api.document(
        server_url="https://id.example" + PREFIX, token_url="https://id.example/token"
    )


def test_every_route_is_documented_and_every_operation_routed() -> None:
    app = Flask(__name__)
    app.register_blueprint(bp)
    routed = {
        (method, re.sub(r"<(\w+)>", r"{\1}", rule.rule.removeprefix(PREFIX)))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("admin_api.") and rule.endpoint != "admin_api.openapi_document"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {
        (method.upper(), path) for path, item in document()["paths"].items() for method in item
    }
    assert routed == documented
    ids = [op.operation_id for op in api.operations]
    assert len(ids) == len(set(ids))


def test_references_resolve_and_operations_are_described() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    defined = set(doc["components"]["schemas"])
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', repr(doc).replace("'", '"')))
    assert refs and refs <= defined
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (method, path)
            responses = operation["responses"]
            assert {"401", "403"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}
    flows = doc["components"]["securitySchemes"]["oauth2"]["flows"]
    assert set(flows["clientCredentials"]["scopes"]) == {"admin"}
    assert doc["security"] == [{"oauth2": ["admin"]}, {"bearer": []}]


def test_changes_are_only_what_was_sent() -> None:
    changes = schemas.ClientChanges.model_validate({"client_name": "New", "logo_uri": None})
    assert changes.model_fields_set == {"client_name", "logo_uri"}
    with pytest.raises(ValidationError):
        schemas.ClientChanges.model_validate({"client_name": None})
    with pytest.raises(ValidationError):
        schemas.ClientChanges.model_validate({"redirect_uris": None})
    with pytest.raises(ValidationError):
        schemas.ClientChanges.model_validate({"client_secret": "chosen"})
    properties = schemas.ClientChanges.model_json_schema()["properties"]
    assert all("default" not in prop for prop in properties.values())


def test_text_is_refused_where_the_database_could_not_store_it() -> None:
    with pytest.raises(ValidationError, match="NUL"):
        schemas.NewClient.model_validate({"client_name": "A\x00B"})
    with pytest.raises(ValidationError):
        schemas.NewClient.model_validate({"client_name": "A", "default_acr": "x" * 129})
    with pytest.raises(ValidationError, match="out of range"):
        schemas.AuditFilter.model_validate({"since": "0001-01-01T00:00:00+01:00"})
    naive = schemas.AuditFilter.model_validate({"until": "2026-01-02T03:04:05"})
    assert naive.until is not None and naive.until.utcoffset() is not None
    assert naive.until.isoformat() == "2026-01-02T03:04:05+00:00"
    shifted = schemas.AuditFilter.model_validate({"since": "2026-01-02T03:04:05+02:00"})
    assert shifted.since is not None and shifted.since.hour == 1
