"""The device API's declarations: every route is in the document, every
reference resolves, and the request models refuse what the services cannot
take (with the fields at fault)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from pydantic import ValidationError

from idp.deviceapi import PREFIX, bp, schemas
from idp.deviceapi.base import api
from idp.devices.models import DEVICE_KINDS
from idp.devices.service import ACTION_PURPOSES

PUBLIC = {"/enrolments", "/enrolments/{enrolment_id}/complete", "/restorations",
          "/restorations/{restore_id}/code", "/restorations/{restore_id}/complete"}  # fmt: skip


def document() -> dict[str, Any]:
    return api.document(server_url="https://id.example" + PREFIX)


def test_every_route_is_documented_and_every_operation_routed() -> None:
    app = Flask(__name__)
    app.register_blueprint(bp)
    routed = {
        (method, re.sub(r"<(\w+)>", r"{\1}", rule.rule.removeprefix(PREFIX)))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("device_api.")
        and rule.endpoint != "device_api.openapi_document"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {
        (method.upper(), path) for path, item in document()["paths"].items() for method in item
    }
    assert routed == documented
    assert len(routed) == 26
    ids = [op.operation_id for op in api.operations]
    assert len(ids) == len(set(ids))


def test_references_resolve_and_operations_are_described() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": "https://id.example/device/v1"}]
    defined = set(doc["components"]["schemas"])
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', repr(doc).replace("'", '"')))
    assert refs and refs <= defined
    assert doc["security"] == [{"deviceToken": []}]
    assert doc["components"]["securitySchemes"]["deviceToken"]["scheme"] == "bearer"
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (method, path)
            responses = operation["responses"]
            if path in PUBLIC:
                assert operation["security"] == [], (method, path)
            else:
                assert "security" not in operation, (method, path)
                assert {"401", "403"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            if "requestBody" in operation:
                assert "400" in responses, (method, path)
            for status, response in responses.items():
                assert "headers" not in response  # no RFC 6750 challenge here
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}
    activation = doc["paths"]["/restoration/activation"]["post"]["responses"]
    assert {"200", "202"} <= set(activation)


def test_the_models_know_the_services_choices() -> None:
    kinds = schemas.NewEnrolment.model_json_schema()["properties"]["kind"]["enum"]
    assert tuple(kinds) == DEVICE_KINDS
    purposes = schemas.ActionChallenge.model_json_schema()["properties"]["purpose"]["enum"]
    assert tuple(purposes) == ACTION_PURPOSES


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "a\x00b", 42, None])
def test_a_device_name_has_1_to_100_printable_characters(name: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        schemas.Rename.model_validate({"name": name})
    assert [error["loc"] for error in refused.value.errors()] == [("name",)]


def test_names_are_collapsed_and_answers_are_strict() -> None:
    assert schemas.Rename.model_validate({"name": "  Work \t phone "}).name == "Work phone"
    with pytest.raises(ValidationError):
        schemas.ApprovalAnswer.model_validate({"decision": "deny", "fraud": "yes"})
    with pytest.raises(ValidationError):
        schemas.ApprovalAnswer.model_validate({"decision": "maybe"})
    answer = schemas.ApprovalAnswer.model_validate({"decision": "deny", "extra": 1})
    assert (answer.code, answer.fraud, answer.assertion) == ("", False, None)
