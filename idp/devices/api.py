"""The device API (``/device/v1``), JSON; see docs/device-api.md."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Response, g, jsonify, request, stream_with_context
from flask.typing import ResponseReturnValue

from .. import audit
from ..approvals import service as approvals
from ..auth.first_factor import verify_password_login
from ..errors import ApiBlueprint
from ..extensions import csrf, db, utcnow
from ..state import idp
from . import notices, service
from .models import Device
from .service import InvalidDeviceRequest

bp = ApiBlueprint("device_api", __name__, url_prefix="/device/v1")
csrf.exempt(bp)  # bearer tokens and WebAuthn assertions, no cookies

EVENT_STREAM_SECONDS = 300


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidDeviceRequest(detail="a JSON object is expected")
    return data


def current_device() -> Device:
    """The device whose bearer token came with the request (once per request)."""
    if "device" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        g.device = service.device_for_token(token.strip() if scheme.lower() == "bearer" else None)
    device: Device = g.device
    return device


def _user_json(device: Device) -> dict[str, Any]:
    user = device.user
    return {"sub": user.sub, "access_number": user.access_number, "email": user.email}


# --- enrolment -------------------------------------------------------------------------


@bp.post("/enrolments")
def start_enrolment() -> ResponseReturnValue:
    data = _body()
    name, kind = service.check_device_fields(data.get("device_name"), data.get("kind"))
    ip = request.remote_addr or "unknown"
    if data.get("binding_code"):
        code = data["binding_code"]
        if not isinstance(code, str) or len(code) > 64:
            raise InvalidDeviceRequest(detail="binding_code")
        started = service.start_with_binding_code(code, device_name=name, kind=kind, ip=ip)
    else:
        identifier, password = data.get("identifier"), data.get("password")
        if not isinstance(identifier, str) or not isinstance(password, str):
            raise InvalidDeviceRequest(detail="identifier and password, or binding_code")
        user = verify_password_login(
            identifier=" ".join(identifier.split())[:254],
            password=password[:1024],
            ip=ip,
            channel="device",
        )
        if user.password_reset_required:
            raise service.PasswordChangeRequired()
        started = service.start_with_password(user, device_name=name, kind=kind)
    body: dict[str, Any] = {
        "enrolment_id": started.enrolment.id,
        "expires_in": idp().settings.enrolment_lifetime,
        "public_key": json.loads(started.options_json),
    }
    if started.channel:
        body["confirmation"] = {"channel": started.channel, "destination": started.destination}
    return jsonify(body), 201


@bp.post("/enrolments/<enrolment_id>/complete")
def complete_enrolment(enrolment_id: str) -> ResponseReturnValue:
    data = _body()
    code = data.get("confirmation_code")
    enrolled = service.complete(
        enrolment_id[:64],
        credential=data.get("credential"),
        confirmation_code=code if isinstance(code, str) else None,
        ip=request.remote_addr,
    )
    device = enrolled.device
    return jsonify(
        device=service.describe(device, current=device),
        device_token=enrolled.token,
        user=_user_json(device),
        vapid_public_key=idp().push.public_key(),
    ), 201


# --- the device ------------------------------------------------------------------------


@bp.get("/status")
def status() -> ResponseReturnValue:
    device = current_device()
    return jsonify(device=service.describe(device, current=device), user=_user_json(device))


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
    issued = service.new_action_nonce(device=device, purpose=_body().get("purpose"))
    return jsonify(nonce=issued.nonce, purpose=issued.purpose, expires_in=issued.expires_in), 201


@bp.post("/devices/<device_id>/delete")
def delete_device(device_id: str) -> ResponseReturnValue:
    # POST, not DELETE: the request carries a body (nonce and assertion), and
    # a body on DELETE has no defined meaning (RFC 9110 §9.3.5).
    device = current_device()
    data = _body()
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
    renamed = service.rename_device(target, _body().get("name"), actor=f"device:{device.id}")
    return jsonify(device=service.describe(renamed, current=device))


@bp.get("/notices")
def list_notices() -> ResponseReturnValue:
    """Notices about the account (a restoration started, a device added or
    removed), newest first; docs/device-api.md "Notices"."""
    return jsonify(notices=[n.public() for n in notices.for_device(current_device())])


@bp.put("/push-subscription")
def put_subscription() -> ResponseReturnValue:
    device = current_device()
    subscription = idp().push.parse_subscription(_body())
    service.set_push_subscription(device, subscription.as_dict())
    audit.record("push_subscription_set", user_id=device.user_id, device=device.id)
    return "", 204


@bp.delete("/push-subscription")
def delete_subscription() -> ResponseReturnValue:
    device = current_device()
    service.set_push_subscription(device, None)
    return "", 204


# --- approvals -------------------------------------------------------------------------


@bp.get("/approvals")
def list_approvals() -> ResponseReturnValue:
    device = current_device()
    now = utcnow()
    pending = approvals.pending_for(device.user_id, now, device=device)
    return jsonify(approvals=[a.public(now) for a in pending])


@bp.get("/approvals/<approval_id>")
def get_approval(approval_id: str) -> ResponseReturnValue:
    device = current_device()
    return jsonify(approvals.for_device(approval_id, device, utcnow()).public(utcnow()))


@bp.post("/approvals/<approval_id>")
def answer_approval(approval_id: str) -> ResponseReturnValue:
    device = current_device()
    data = _body()
    answered = approvals.answer(
        approval_id=approval_id,
        device=device,
        decision=data.get("decision"),
        code=data.get("code", ""),
        fraud=data.get("fraud", False),
        assertion=data.get("assertion"),
        now=utcnow(),
    )
    return jsonify(status=answered.approval.status)


@bp.get("/events")
def events() -> ResponseReturnValue:
    """New approvals for this device's user, as Server-Sent Events."""
    device = current_device()
    channel = approvals.user_channel(device.user_id)
    user_id = device.user_id
    db.session.close()  # the stream needs Redis only; free the pooled connection

    def stream() -> Iterator[str]:
        yield "retry: 3000\n\n"
        with idp().store.fanout.listen(channel) as waiter:
            # Pending ones first (a device that just connected), then new ones.
            seen: set[str] = set()
            for approval in reversed(approvals.pending_for(user_id, utcnow(), device=device)):
                seen.add(approval.id)
                yield f"event: approval\ndata: {json.dumps({'id': approval.id})}\n\n"
            deadline = time.monotonic() + EVENT_STREAM_SECONDS
            while (remaining := deadline - time.monotonic()) > 0:
                if not waiter.wait(min(15.0, remaining)):
                    yield ": keep-alive\n\n"
                    continue
                for approval in approvals.pending_for(user_id, utcnow(), device=device):
                    if approval.id not in seen:
                        seen.add(approval.id)
                        yield f"event: approval\ndata: {json.dumps({'id': approval.id})}\n\n"

    response = Response(stream_with_context(stream()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response
