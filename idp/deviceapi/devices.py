"""The device itself and the user's other devices: status, the list, renaming,
signed actions (their nonces) and deleting; docs/device-api.md "The device
itself" and "Signed actions"."""

from __future__ import annotations

from flask import request

from ..devices import service
from ..devices.models import Device
from ..extensions import db, utcnow
from . import schemas
from .base import api, current_device, device_json, user_json


@api.operation("GET", "/status", tag="devices", response=schemas.Status)
def status() -> schemas.Status:
    """This device and its user."""
    device = current_device()
    return schemas.Status(device=device_json(device, current=device), user=user_json(device))


@api.operation("GET", "/devices", tag="devices", response=schemas.Devices)
def devices() -> schemas.Devices:
    """The user's active devices, oldest first."""
    device = current_device()
    return schemas.Devices(
        devices=[device_json(d, current=device) for d in service.active_devices(device.user_id)]
    )


@api.operation(
    "POST",
    "/actions/challenge",
    tag="devices",
    status=201,
    body=schemas.ActionChallenge,
    response=schemas.ActionNonce,
    description="The nonce belongs to this device and this purpose and is good for one "
    "request within expires_in seconds.",
)
def action_nonce(body: schemas.ActionChallenge) -> schemas.ActionNonce:
    """A single-use nonce for one signed action."""
    issued = service.new_action_nonce(device=current_device(), purpose=body.purpose)
    return schemas.ActionNonce(
        nonce=issued.nonce, purpose=issued.purpose, expires_in=issued.expires_in
    )


@api.operation(
    "POST",
    "/devices/{device_id}/delete",
    tag="devices",
    body=schemas.DeviceDeletion,
    response=schemas.DeletedDevice,
    description='Signed action "delete_device", PAYLOAD {"device": DEVICE_ID, "nonce": '
    'NONCE}, with "reason" and "sign_out" ("yes" or "no") added where the body has them. '
    "POST, not DELETE: the request carries a body, and a body on DELETE has no "
    "defined meaning (RFC 9110 §9.3.5).",
)
def delete_device(device_id: str, body: schemas.DeviceDeletion) -> schemas.DeletedDevice:
    """Delete (revoke) one of the user's devices, this one included."""
    device = current_device()
    deleted = service.delete_device(
        actor=device,
        target_id=device_id,
        nonce=body.nonce,
        assertion=body.assertion,
        now=utcnow(),
        ip=request.remote_addr,
        reason=body.reason,
        sign_out=body.sign_out,
    )
    return schemas.DeletedDevice(
        status="deleted",
        device=device_json(deleted.device, current=device),
        remaining_devices=deleted.remaining,
        signed_out=deleted.signed_out,
    )


@api.operation(
    "POST",
    "/devices/{device_id}/rename",
    tag="devices",
    body=schemas.Rename,
    response=schemas.RenamedDevice,
    description="The bearer token suffices: a name grants nothing.",
)
def rename_device(device_id: str, body: schemas.Rename) -> schemas.RenamedDevice:
    """Rename one of the user's active devices."""
    device = current_device()
    target = db.session.get(Device, device_id[:64])
    if target is None or target.user_id != device.user_id or not target.is_active:
        raise service.DeviceNotFound()
    renamed = service.rename_device(target, body.name, actor=f"device:{device.id}")
    return schemas.RenamedDevice(device=device_json(renamed, current=device))
