"""The device API's blueprint, its operations (``idp.openapi``: request
bodies parsed into ``schemas`` models, the OpenAPI document made from them)
and what its modules share: the calling device (its bearer token) and the
JSON shapes of a device, a user and a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, g, jsonify, request

from ..devices import API_PREFIX
from ..devices import service as devices
from ..devices.models import Device
from ..errors import ApiBlueprint
from ..extensions import csrf
from ..openapi import Api, InvalidInput
from ..state import idp
from . import schemas

PREFIX = API_PREFIX

bp = ApiBlueprint("device_api", __name__, url_prefix=PREFIX)
csrf.exempt(bp)  # bearer tokens, WebAuthn assertions and codes; no cookies


def _security_schemes() -> dict[str, Any]:
    return {
        "deviceToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "The device API token a device got when it was enrolled or "
            "restored. A deleted device's token answers 401 device_revoked; a restored "
            "device in its veto window gets 403 device_pending.",
        }
    }


api = Api(
    bp,
    title="Freigabe device API",
    version="1",
    security_schemes=_security_schemes,
    security=[{"deviceToken": []}],
    challenge=False,
    description="The protocol between Freigabe and a user's device (the idp-device CLI, "
    "the browser device app): enrolment, approvals, devices, notices, restoration. "
    "Flows, signatures and error codes: docs/device-api.md.",
)


@bp.before_request
def _before() -> None:
    # PostgreSQL text holds no NUL: refuse it here rather than fail later.
    if any("\x00" in value for value in (request.view_args or {}).values()):
        raise InvalidInput({"path": "must not contain NUL characters"})


def current_device() -> Device:
    """The device whose bearer token came with the request (once per request)."""
    if "device" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        g.device = devices.device_for_token(token.strip() if scheme.lower() == "bearer" else None)
    device: Device = g.device
    return device


def ip() -> str:
    return request.remote_addr or "unknown"


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def device_json(device: Device, *, current: Device) -> schemas.Device:
    return schemas.Device.model_validate(devices.describe(device, current=current))


def user_json(device: Device) -> schemas.User:
    user = device.user
    return schemas.User(sub=user.sub, access_number=user.access_number, email=user.email)


def no_store(model: schemas.Output, status: int = 200) -> Response:
    """An answer that must not be kept (it holds a secret shown once)."""
    response = jsonify(model.model_dump(mode="json"))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """This API's OpenAPI 3.1 document (made from ``schemas``)."""
    return jsonify(api.document(server_url=idp().settings.issuer + PREFIX))
