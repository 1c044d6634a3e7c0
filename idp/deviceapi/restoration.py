"""Restoration (docs/device-api.md "Restoration"): an enrolled device's status,
activation, code 1 and the veto; a new device restoring the ID (no token yet)."""

from __future__ import annotations

import json

from flask import Response

from ..extensions import utcnow
from ..openapi import Answer
from ..restore import activation, service
from ..restore.activation import Activation
from ..state import idp
from . import schemas
from .base import api, current_device, device_json, ip, iso, no_store, user_json

SIGNED = 'Signed action (docs/device-api.md "Signed actions"), '


def _activated(done: Activation) -> Response:
    # Code 1 is in this answer only: it is never shown again.
    assert done.code is not None
    return no_store(
        schemas.Activated(
            status="active", restoration_code=done.code, email_masked=done.email_masked
        )
    )


# --- an enrolled device: status, activation, code 1, the veto ---------------------------


@api.operation("GET", "/restoration", tag="restoration", response=schemas.RestorationStatus)
def restoration_status() -> schemas.RestorationStatus:
    """Whether restoration is active, and whether to ask "Back up your identity"."""
    device = current_device()
    found = activation.status(device, utcnow())
    return schemas.RestorationStatus(
        active=found.active,
        email_masked=found.email_masked,
        email_confirmed=found.email_confirmed,
        activated_at=iso(found.activated_at),
        rotated_at=iso(found.rotated_at),
        prompt_backup=found.prompt_backup,
        pending_devices=[
            schemas.PendingDevice(
                **device_json(d, current=device).model_dump(), pending_until=iso(d.pending_until)
            )
            for d in found.pending_devices
        ],
    )


@api.operation("POST", "/restoration/prompt-dismissed", tag="restoration", status=204)
def dismiss_prompt() -> None:
    """ "Not now": the backup prompt is never shown again."""
    activation.dismiss_prompt(current_device(), utcnow())


@api.operation(
    "POST",
    "/restoration/activation",
    tag="restoration",
    body=schemas.Activation,
    response=schemas.Activated,
    also=((202, schemas.EmailConfirmationRequired),),
    errors=(409, 502),
    description=SIGNED + 'purpose "activate_restoration", PAYLOAD {"email": EMAIL as '
    'sent or "", "nonce": NONCE}. 200 with code 1 when the address is confirmed '
    "already, else 202 and a code by e-mail.",
)
def activate(body: schemas.Activation) -> Response | Answer:
    """Activate restoration."""
    done = activation.activate(
        device=current_device(),
        nonce=body.nonce,
        assertion=body.assertion,
        email=body.email,
        now=utcnow(),
    )
    if done.code is not None:
        return _activated(done)
    assert done.activation_id is not None and done.expires_in is not None
    waiting = schemas.EmailConfirmationRequired(
        status="email_confirmation_required",
        activation_id=done.activation_id,
        email_masked=done.email_masked,
        expires_in=done.expires_in,
    )
    return Answer(waiting, 202)


@api.operation(
    "POST",
    "/restoration/activation/{activation_id}/confirm",
    tag="restoration",
    body=schemas.ActivationCode,
    response=schemas.Activated,
    errors=(409, 429),
    description="Only the device that started the activation; no new assertion.",
)
def confirm_activation(activation_id: str, body: schemas.ActivationCode) -> Response:
    """The e-mailed code of an activation; answers code 1."""
    done = activation.confirm_activation(
        device=current_device(), activation_id=activation_id, code=body.code, now=utcnow()
    )
    return _activated(done)


@api.operation(
    "POST",
    "/restoration/code",
    tag="restoration",
    body=schemas.SignedAction,
    response=schemas.Activated,
    errors=(409,),
    description=SIGNED + 'purpose "regenerate_restoration_code", PAYLOAD {"nonce": NONCE}. '
    "The old code 1 is void at once.",
)
def regenerate(body: schemas.SignedAction) -> Response:
    """A new restoration code 1."""
    done = activation.regenerate(
        device=current_device(), nonce=body.nonce, assertion=body.assertion, now=utcnow()
    )
    return _activated(done)


@api.operation(
    "POST",
    "/restoration/devices/{device_id}/refuse",
    tag="restoration",
    body=schemas.SignedAction,
    response=schemas.RefusedDevice,
    errors=(409,),
    description=SIGNED + 'purpose "refuse_device", PAYLOAD {"device": DEVICE_ID, '
    '"nonce": NONCE}. Only while the restored device is pending (the veto window).',
)
def refuse_device(device_id: str, body: schemas.SignedAction) -> schemas.RefusedDevice:
    """Refuse a restored device in its veto window."""
    device = current_device()
    refused = activation.refuse_device(
        actor=device,
        target_id=device_id,
        nonce=body.nonce,
        assertion=body.assertion,
        now=utcnow(),
        ip=ip(),
    )
    return schemas.RefusedDevice(
        status="refused",
        device=device_json(refused.device, current=device),
        restoration_active=refused.restoration_active,
    )


# --- a new device: restoring the ID (no token yet) -------------------------------------


@api.operation(
    "POST",
    "/restorations",
    tag="restoration",
    status=201,
    public=True,
    body=schemas.NewRestoration,
    response=schemas.RestorationStarted,
    errors=(429, 502),
    description="Code 2 goes to the account's confirmed e-mail address; every device of "
    "the user gets a restore_started notice. Every failure is restore_failed.",
)
def start_restore(body: schemas.NewRestoration) -> schemas.RestorationStarted:
    """Step 1: login ID and code 1."""
    started = service.start_restore(
        login_id=body.login_id,
        code1=body.code1,
        device_name=body.device_name,
        kind=body.kind,
        ip=ip(),
        now=utcnow(),
    )
    return schemas.RestorationStarted(
        restoration_id=started.id, email_masked=started.email_masked, expires_in=started.expires_in
    )


@api.operation(
    "POST",
    "/restorations/{restore_id}/code",
    tag="restoration",
    public=True,
    body=schemas.RestorationCode,
    response=schemas.RestorationVerified,
    errors=(429,),
)
def verify_code2(restore_id: str, body: schemas.RestorationCode) -> schemas.RestorationVerified:
    """Step 2: code 2; answers the options for the new device's key."""
    verified = service.verify_code2(restore_id=restore_id, code2=body.code2, ip=ip(),
                                    now=utcnow())  # fmt: skip
    return schemas.RestorationVerified(
        restoration_id=verified.id,
        expires_in=verified.expires_in,
        public_key=json.loads(verified.options_json),
    )


@api.operation(
    "POST",
    "/restorations/{restore_id}/complete",
    tag="restoration",
    status=201,
    public=True,
    body=schemas.RestorationCompletion,
    response=schemas.Restored,
    errors=(429,),
    description="The device is added (pending during a veto window), code 1 is rotated "
    "and the new one is in this answer only.",
)
def complete_restore(restore_id: str, body: schemas.RestorationCompletion) -> Response:
    """Step 3: register the new device's key."""
    restored = service.complete_restore(
        restore_id=restore_id, credential=body.credential, ip=ip(), now=utcnow()
    )
    device = restored.device
    answer = schemas.Restored(
        status="pending" if restored.pending_until else "active",
        pending_until=iso(restored.pending_until),
        device=device_json(device, current=device),
        device_token=restored.token,
        user=user_json(device),
        vapid_public_key=idp().push.public_key(),
        restoration_code=restored.code,
    )
    return no_store(answer, 201)
