"""The device API's blueprint and what its modules share: the calling device
(its bearer token) and the JSON shapes of a user and a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, g, request

from ..devices import service as devices
from ..devices.models import Device
from ..errors import ApiBlueprint
from ..extensions import csrf

PREFIX = "/device/v1"

bp = ApiBlueprint("device_api", __name__, url_prefix=PREFIX)
csrf.exempt(bp)  # bearer tokens, WebAuthn assertions and codes; no cookies


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


def user_json(device: Device) -> dict[str, Any]:
    user = device.user
    return {"sub": user.sub, "access_number": user.access_number, "email": user.email}


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise devices.InvalidDeviceRequest(detail="a JSON object is expected")
    return data
