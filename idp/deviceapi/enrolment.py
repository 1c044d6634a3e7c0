"""Enrolment: path A (identifier and password, then a confirmation code) or
path B (a binding code), then "register key"; docs/device-api.md "Enrolment"."""

from __future__ import annotations

import json
from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ..auth.first_factor import verify_password_login
from ..devices import service
from ..devices.service import InvalidDeviceRequest
from ..state import idp
from .base import body, bp, user_json


@bp.post("/enrolments")
def start_enrolment() -> ResponseReturnValue:
    data = body()
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
    answer: dict[str, Any] = {
        "enrolment_id": started.enrolment.id,
        "expires_in": idp().settings.enrolment_lifetime,
        "public_key": json.loads(started.options_json),
    }
    if started.channel:
        answer["confirmation"] = {"channel": started.channel, "destination": started.destination}
    return jsonify(answer), 201


@bp.post("/enrolments/<enrolment_id>/complete")
def complete_enrolment(enrolment_id: str) -> ResponseReturnValue:
    data = body()
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
        user=user_json(device),
        vapid_public_key=idp().push.public_key(),
    ), 201
