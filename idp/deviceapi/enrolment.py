"""Enrolment: path A (identifier and password, then a confirmation code) or
path B (a binding code), then "register key"; docs/device-api.md "Enrolment"."""

from __future__ import annotations

import json

from flask import Response, jsonify, request

from ..auth.first_factor import verify_password_login
from ..devices import enrolment, service
from ..openapi import InvalidInput
from ..state import idp
from . import schemas
from .base import api, device_json, ip, user_json


@api.operation(
    "POST",
    "/enrolments",
    tag="enrolment",
    status=201,
    public=True,
    body=schemas.NewEnrolment,
    response=schemas.EnrolmentStarted,
    errors=(401, 403, 429),
    description="Path A (identifier and password; a confirmation code goes by SMS, or "
    "by e-mail where there is no phone number) or path B (binding_code).",
)
def start_enrolment(body: schemas.NewEnrolment) -> Response:
    """Start enrolling a device."""
    if body.binding_code:
        started = enrolment.start_with_binding_code(
            body.binding_code, device_name=body.device_name, kind=body.kind, ip=ip()
        )
    else:
        if body.identifier is None or body.password is None:
            missing = "identifier and password, or binding_code"
            raise InvalidInput({name: missing for name in ("identifier", "password")
                                if getattr(body, name) is None})  # fmt: skip
        user = verify_password_login(
            identifier=" ".join(body.identifier.split())[:254],
            password=body.password[:1024],
            ip=ip(),
            channel="device",
        )
        if user.password_reset_required:
            raise service.PasswordChangeRequired()
        started = enrolment.start_with_password(user, device_name=body.device_name, kind=body.kind)
    answer = schemas.EnrolmentStarted(
        enrolment_id=started.enrolment.id,
        expires_in=idp().settings.enrolment_lifetime,
        public_key=json.loads(started.options_json),
    )
    if started.channel:
        answer.confirmation = schemas.Confirmation.model_validate(
            {"channel": started.channel, "destination": started.destination}
        )
    # Path B has no "confirmation" member at all.
    response = jsonify(answer.model_dump(mode="json", exclude_unset=True))
    response.status_code = 201
    return response


@api.operation(
    "POST",
    "/enrolments/{enrolment_id}/complete",
    tag="enrolment",
    status=201,
    public=True,
    body=schemas.EnrolmentCompletion,
    response=schemas.Enrolled,
    errors=(429,),
    description="Checks the confirmation code (path A), verifies the registration "
    "(user verification required) and adds the device; its token is in this answer only.",
)
def complete_enrolment(enrolment_id: str, body: schemas.EnrolmentCompletion) -> schemas.Enrolled:
    """Register the device's key ("register key")."""
    enrolled = enrolment.complete(
        enrolment_id[:64],
        credential=body.credential,
        confirmation_code=body.confirmation_code,
        ip=request.remote_addr,
    )
    device = enrolled.device
    return schemas.Enrolled(
        device=device_json(device, current=device),
        device_token=enrolled.token,
        user=user_json(device),
        vapid_public_key=idp().push.public_key(),
    )
