"""Restoration (docs/device-api.md "Restoration"): an enrolled device's status,
activation, code 1 and the veto; a new device restoring the ID (no token yet)."""

from __future__ import annotations

import json
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from ..devices import service as devices
from ..extensions import utcnow
from ..restore import service
from ..restore.service import Activation
from ..state import idp
from .base import body, bp, current_device, ip, iso, no_store


def _activated(done: Activation) -> dict[str, Any]:
    # Code 1 is in this answer only: it is never shown again.
    return {"status": "active", "restoration_code": done.code, "email_masked": done.email_masked}


# --- an enrolled device: status, activation, code 1, the veto ---------------------------


@bp.get("/restoration")
def restoration_status() -> ResponseReturnValue:
    device = current_device()
    now = utcnow()
    found = service.status(device, now)
    return jsonify(
        active=found.active,
        email_masked=found.email_masked,
        email_confirmed=found.email_confirmed,
        activated_at=iso(found.activated_at),
        rotated_at=iso(found.rotated_at),
        prompt_backup=found.prompt_backup,
        pending_devices=[
            {**devices.describe(d, current=device), "pending_until": iso(d.pending_until)}
            for d in found.pending_devices
        ],
    )


@bp.post("/restoration/prompt-dismissed")
def dismiss_prompt() -> ResponseReturnValue:
    service.dismiss_prompt(current_device(), utcnow())
    return "", 204


@bp.post("/restoration/activation")
def activate() -> ResponseReturnValue:
    device = current_device()
    data = body()
    done = service.activate(
        device=device,
        nonce=data.get("nonce"),
        assertion=data.get("assertion"),
        email=data.get("email"),
        now=utcnow(),
    )
    if done.code is not None:
        return no_store(jsonify(_activated(done)))
    return jsonify(
        status="email_confirmation_required",
        activation_id=done.activation_id,
        email_masked=done.email_masked,
        expires_in=done.expires_in,
    ), 202


@bp.post("/restoration/activation/<activation_id>/confirm")
def confirm_activation(activation_id: str) -> ResponseReturnValue:
    device = current_device()
    done = service.confirm_activation(
        device=device, activation_id=activation_id, code=body().get("code"), now=utcnow()
    )
    return no_store(jsonify(_activated(done)))


@bp.post("/restoration/code")
def regenerate() -> ResponseReturnValue:
    device = current_device()
    data = body()
    done = service.regenerate(
        device=device, nonce=data.get("nonce"), assertion=data.get("assertion"), now=utcnow()
    )
    return no_store(jsonify(_activated(done)))


@bp.post("/restoration/devices/<device_id>/refuse")
def refuse_device(device_id: str) -> ResponseReturnValue:
    device = current_device()
    data = body()
    refused = service.refuse_device(
        actor=device,
        target_id=device_id,
        nonce=data.get("nonce"),
        assertion=data.get("assertion"),
        now=utcnow(),
        ip=ip(),
    )
    return jsonify(
        status="refused",
        device=devices.describe(refused.device, current=device),
        restoration_active=refused.restoration_active,
    )


# --- a new device: restoring the ID (no token yet) -------------------------------------


@bp.post("/restorations")
def start_restore() -> ResponseReturnValue:
    data = body()
    started = service.start_restore(
        login_id=data.get("login_id"),
        code1=data.get("code1"),
        device_name=data.get("device_name"),
        kind=data.get("kind"),
        ip=ip(),
        now=utcnow(),
    )
    return jsonify(
        restoration_id=started.id, email_masked=started.email_masked, expires_in=started.expires_in
    ), 201


@bp.post("/restorations/<restore_id>/code")
def verify_code2(restore_id: str) -> ResponseReturnValue:
    verified = service.verify_code2(
        restore_id=restore_id, code2=body().get("code2"), ip=ip(), now=utcnow()
    )
    return jsonify(
        restoration_id=verified.id,
        expires_in=verified.expires_in,
        public_key=json.loads(verified.options_json),
    )


@bp.post("/restorations/<restore_id>/complete")
def complete_restore(restore_id: str) -> ResponseReturnValue:
    restored = service.complete_restore(
        restore_id=restore_id, credential=body().get("credential"), ip=ip(), now=utcnow()
    )
    device = restored.device
    user = device.user
    response = jsonify(
        status="pending" if restored.pending_until else "active",
        pending_until=iso(restored.pending_until),
        device=devices.describe(device, current=device),
        device_token=restored.token,
        user={"sub": user.sub, "access_number": user.access_number, "email": user.email},
        vapid_public_key=idp().push.public_key(),
        restoration_code=restored.code,
    )
    response.status_code = 201
    return no_store(response)
