"""Notices about the account and the device's Web Push subscription;
docs/device-api.md "Notices" and "The device itself"."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue

from .. import audit
from ..devices import notices, service
from ..state import idp
from .base import body, bp, current_device


@bp.get("/notices")
def list_notices() -> ResponseReturnValue:
    """Notices about the account (a restoration started, a device added or
    removed), newest first."""
    return jsonify(notices=[n.public() for n in notices.for_device(current_device())])


@bp.put("/push-subscription")
def put_subscription() -> ResponseReturnValue:
    device = current_device()
    subscription = idp().push.parse_subscription(body())
    service.set_push_subscription(device, subscription.as_dict())
    audit.record("push_subscription_set", user_id=device.user_id, device=device.id)
    return "", 204


@bp.delete("/push-subscription")
def delete_subscription() -> ResponseReturnValue:
    device = current_device()
    service.set_push_subscription(device, None)
    return "", 204
