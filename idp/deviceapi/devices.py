"""The device itself and the user's other devices: status, the list, renaming,
signed actions (their nonces) and deleting; docs/device-api.md "The device
itself" and "Signed actions"."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ..devices import service
from ..devices.models import Device
from ..extensions import db, utcnow
from .base import body, bp, current_device, user_json


@bp.get("/status")
def status() -> ResponseReturnValue:
    device = current_device()
    return jsonify(device=service.describe(device, current=device), user=user_json(device))


@bp.get("/devices")
def devices() -> ResponseReturnValue:
    device = current_device()
    return jsonify(
        devices=[
            service.describe(d, current=device) for d in service.active_devices(device.user_id)
        ]
    )


@bp.post("/actions/challenge")
def action_nonce() -> ResponseReturnValue:
    """A single-use nonce for one signed action (docs/device-api.md "Actions")."""
    device = current_device()
    issued = service.new_action_nonce(device=device, purpose=body().get("purpose"))
    return jsonify(nonce=issued.nonce, purpose=issued.purpose, expires_in=issued.expires_in), 201


@bp.post("/devices/<device_id>/delete")
def delete_device(device_id: str) -> ResponseReturnValue:
    # POST, not DELETE: the request carries a body (nonce and assertion), and
    # a body on DELETE has no defined meaning (RFC 9110 §9.3.5).
    device = current_device()
    data = body()
    deleted = service.delete_device(
        actor=device,
        target_id=device_id,
        nonce=data.get("nonce"),
        assertion=data.get("assertion"),
        now=utcnow(),
        ip=request.remote_addr,
    )
    return jsonify(
        status="deleted",
        device=service.describe(deleted.device, current=device),
        remaining_devices=deleted.remaining,
    )


@bp.post("/devices/<device_id>/rename")
def rename_device(device_id: str) -> ResponseReturnValue:
    """Rename one of the user's devices (the bearer token suffices: a name
    grants nothing)."""
    device = current_device()
    target = db.session.get(Device, device_id[:64])
    if target is None or target.user_id != device.user_id or not target.is_active:
        raise service.DeviceNotFound()
    renamed = service.rename_device(target, body().get("name"), actor=f"device:{device.id}")
    return jsonify(device=service.describe(renamed, current=device))
