"""Restoration in the device API (``/device/v1``), JSON; see docs/device-api.md
"Restoration". Its own blueprint beside ``device_api`` on the same prefix."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue

from ..devices import service as devices
from ..devices.api import current_device
from ..errors import ApiBlueprint
from ..extensions import csrf, utcnow
from ..state import idp
from . import service
from .service import Activation, InvalidRestoreRequest

bp = ApiBlueprint("restore_api", __name__, url_prefix="/device/v1")
csrf.exempt(bp)  # bearer tokens, WebAuthn assertions and codes; no cookies


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidRestoreRequest(detail="a JSON object is expected")
    return data


def _ip() -> str:
    return request.remote_addr or "unknown"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _activated(done: Activation) -> dict[str, Any]:
    # Code 1 is in this answer only: it is never shown again.
    return {"status": "active", "restoration_code": done.code, "email_masked": done.email_masked}


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


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
        activated_at=_iso(found.activated_at),
        rotated_at=_iso(found.rotated_at),
        prompt_backup=found.prompt_backup,
        pending_devices=[
            {**devices.describe(d, current=device), "pending_until": _iso(d.pending_until)}
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
    data = _body()
    done = service.activate(
        device=device,
        nonce=data.get("nonce"),
        assertion=data.get("assertion"),
        email=data.get("email"),
        now=utcnow(),
    )
    if done.code is not None:
        return _no_store(jsonify(_activated(done)))
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
        device=device, activation_id=activation_id, code=_body().get("code"), now=utcnow()
    )
    return _no_store(jsonify(_activated(done)))


@bp.post("/restoration/code")
def regenerate() -> ResponseReturnValue:
    device = current_device()
    data = _body()
    done = service.regenerate(
        device=device, nonce=data.get("nonce"), assertion=data.get("assertion"), now=utcnow()
    )
    return _no_store(jsonify(_activated(done)))


@bp.post("/restoration/devices/<device_id>/refuse")
def refuse_device(device_id: str) -> ResponseReturnValue:
    device = current_device()
    data = _body()
    refused = service.refuse_device(
        actor=device,
        target_id=device_id,
        nonce=data.get("nonce"),
        assertion=data.get("assertion"),
        now=utcnow(),
        ip=_ip(),
    )
    return jsonify(
        status="refused",
        device=devices.describe(refused.device, current=device),
        restoration_active=refused.restoration_active,
    )


# --- a new device: restoring the ID (no token yet) -------------------------------------


@bp.post("/restorations")
def start_restore() -> ResponseReturnValue:
    data = _body()
    started = service.start_restore(
        login_id=data.get("login_id"),
        code1=data.get("code1"),
        device_name=data.get("device_name"),
        kind=data.get("kind"),
        ip=_ip(),
        now=utcnow(),
    )
    return jsonify(
        restoration_id=started.id, email_masked=started.email_masked, expires_in=started.expires_in
    ), 201


@bp.post("/restorations/<restore_id>/code")
def verify_code2(restore_id: str) -> ResponseReturnValue:
    verified = service.verify_code2(
        restore_id=restore_id, code2=_body().get("code2"), ip=_ip(), now=utcnow()
    )
    return jsonify(
        restoration_id=verified.id,
        expires_in=verified.expires_in,
        public_key=json.loads(verified.options_json),
    )


@bp.post("/restorations/<restore_id>/complete")
def complete_restore(restore_id: str) -> ResponseReturnValue:
    restored = service.complete_restore(
        restore_id=restore_id, credential=_body().get("credential"), ip=_ip(), now=utcnow()
    )
    device = restored.device
    user = device.user
    response = jsonify(
        status="pending" if restored.pending_until else "active",
        pending_until=_iso(restored.pending_until),
        device=devices.describe(device, current=device),
        device_token=restored.token,
        user={"sub": user.sub, "access_number": user.access_number, "email": user.email},
        vapid_public_key=idp().push.public_key(),
        restoration_code=restored.code,
    )
    response.status_code = 201
    return _no_store(response)
