"""Restoration on an enrolled device (DESIGN §5): its status and the "Back
up your identity" prompt, activation, a new code 1, and refusing a restored
device in its veto window.

Activation, from an enrolled device with a signed action (a fresh WebAuthn
assertion with user verification over ``action_challenge`` and a single-use
nonce from ``POST /device/v1/actions/challenge``): the account's e-mail
address is confirmed with a code unless it is already verified (an account
without one gives one), then restoration code 1 is shown once and kept as a
keyed digest. Regenerating replaces it the same way.

Redis keys (with TTLs):
  restore-activation:<id>  an activation waiting for the e-mail code
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from .. import audit
from ..accounts.models import User
from ..audit import AuditEvent
from ..devices import service as devices
from ..devices.models import Device
from ..devices.service import DeviceNotFound, TooManyCodeAttempts, WrongCode, active_devices
from ..extensions import db
from ..notify import DeliveryError
from ..state import idp
from ..store.kinds import Kind
from ..store.ratelimit import Limit, LimitReached, reserve
from ..tokens import new_token
from ..webauthn import CredentialJSON
from .codes import (
    BACKUP_PROMPT_AT_LOGIN,
    EMAIL_CODE_DIGITS,
    EMAIL_CODE_TRIES,
    digits,
    issue_code1,
    masked,
    new_digits,
    restoration_setup,
    valid_id,
)
from .errors import (
    DeviceNotPending,
    EmailMismatch,
    EmailRequired,
    InvalidActivation,
    InvalidRestoreRequest,
    RestorationAlreadyActive,
    RestorationNotActive,
)
from .messages import send_activation_code, send_code_revoked
from .models import RestorationSetup

_MAX_EMAIL = 254
# An activation waiting for its e-mail confirmation code:
# {"user_id", "device_id", "email", "code_digest"}.
ACTIVATIONS = Kind("restore-activation", dict, ttl=lambda s: s.restore_code_lifetime)


@dataclass(frozen=True)
class RestorationStatus:
    active: bool
    email_masked: str | None
    email_confirmed: bool
    activated_at: datetime | None
    rotated_at: datetime | None
    prompt_backup: bool
    pending_devices: list[Device]


@dataclass(frozen=True)
class Activation:
    """Either done (``code``: code 1, shown once) or waiting for the e-mail code."""

    email_masked: str
    code: str | None = None
    activation_id: str | None = None
    expires_in: int | None = None


@dataclass(frozen=True)
class RefusedDevice:
    device: Device
    actor: Device
    restoration_active: bool


# --- status and the "Back up your identity" prompt -------------------------------------


def confirmed_logins(user_id: int) -> int:
    """Logins the user confirmed on a device (approvals approved), from the
    audit log: nothing else has to count them."""
    count = db.session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.user_id == user_id, AuditEvent.type == "approval_approved")
    )
    return int(count or 0)


def status(device: Device, now: datetime) -> RestorationStatus:
    user = device.user
    setup = restoration_setup(user.id)
    active = setup is not None and setup.is_active
    dismissed = setup is not None and setup.prompt_dismissed_at is not None
    prompt = not active and not dismissed and confirmed_logins(user.id) >= BACKUP_PROMPT_AT_LOGIN
    return RestorationStatus(
        active=active,
        email_masked=masked(user.email) if user.email else None,
        email_confirmed=bool(user.email and user.email_verified),
        activated_at=setup.activated_at if setup and active else None,
        rotated_at=setup.rotated_at if setup and active else None,
        prompt_backup=prompt,
        pending_devices=[d for d in active_devices(user.id) if d.is_pending(now)],
    )


def dismiss_prompt(device: Device, now: datetime) -> None:
    """ "Not now": remembered for good; activation stays possible."""
    restoration_setup(device.user_id, create=True)
    dismissed = db.session.execute(
        update(RestorationSetup)
        .where(
            RestorationSetup.user_id == device.user_id,
            RestorationSetup.prompt_dismissed_at.is_(None),
        )
        .values(prompt_dismissed_at=now)
    )
    if dismissed.rowcount:  # type: ignore[attr-defined]
        audit.record("restoration_prompt_dismissed", user_id=device.user_id, device=device.id)


# --- signed actions of an enrolled device ------------------------------------------


def _check_email(email: str | None) -> str | None:
    if email is None or email == "":
        return None
    value = email.strip()
    local, _, domain = value.partition("@")
    if (
        len(value) > _MAX_EMAIL
        or not local
        or "." not in domain.strip(".")
        or "@" in domain
        or any(c.isspace() or c in "<>,;\"'" for c in value)
    ):
        raise InvalidRestoreRequest(
            _l("This e-mail address is not valid."),
            fields={"email": "not an e-mail address"},
        )
    return value


def activate(
    *,
    device: Device,
    nonce: str | None,
    assertion: CredentialJSON | None,
    email: str | None,
    now: datetime,
) -> Activation:
    """Activate restoration from an enrolled device.

    - the nonce is one this device fetched for "activate_restoration" (used up
      whatever follows);
    - the assertion is this device's, with user verification, over
      ``action_challenge(purpose="activate_restoration", payload={"nonce":
      nonce, "email": email as sent, or ""})``;
    - restoration is not active yet;
    - an account with a verified e-mail address is activated at once: code 1
      is returned; otherwise the address (the account's, or the one given when
      the account has none) gets a confirmation code, and
      ``confirm_activation`` finishes.
    """
    address = _check_email(email)
    signed_email = email or ""
    taken = devices.take_action_nonce(nonce, device=device, purpose="activate_restoration")
    devices.verify_signed_action(
        device,
        purpose="activate_restoration",
        payload={"nonce": taken, "email": signed_email},
        assertion=assertion,
        now=now,
    )
    user = device.user
    setup = restoration_setup(user.id)
    if setup is not None and setup.is_active:
        raise RestorationAlreadyActive()
    if user.email and address and address.lower() != user.email.lower():
        raise EmailMismatch()
    if user.email and user.email_verified:
        setup = restoration_setup(user.id, create=True)
        assert setup is not None
        code = issue_code1(setup, device, now)
        setup.activated_at = now
        audit.record("restoration_activated", user_id=user.id, device=device.id,
                     email_confirmation=False)  # fmt: skip
        return Activation(email_masked=masked(user.email), code=code)

    to = user.email or address
    if not to:
        raise EmailRequired()
    lifetime = idp().settings.restore_code_lifetime
    activation_id = new_token(16)
    code = new_digits(EMAIL_CODE_DIGITS)
    record = {
        "user_id": user.id,
        "device_id": device.id,
        "email": to,
        "code_digest": idp().digester.digest(code, purpose=f"restore-activation:{activation_id}"),
    }
    ACTIVATIONS.put(activation_id, record, ttl=lifetime)
    try:
        send_activation_code(user, to, code)
    except DeliveryError:
        ACTIVATIONS.delete(activation_id)
        raise
    audit.record("restoration_email_code_sent", user_id=user.id, device=device.id,
                 new_address=user.email is None)  # fmt: skip
    return Activation(email_masked=masked(to), activation_id=activation_id, expires_in=lifetime)


def confirm_activation(
    *, device: Device, activation_id: str, code: str, now: datetime
) -> Activation:
    """The e-mail confirmation code of an activation: the address is confirmed
    (and becomes the account's, if it had none) and code 1 is returned once."""
    store = idp().store
    data = ACTIVATIONS.get(activation_id) if valid_id(activation_id) else None
    # Only the device that started it may finish it.
    if not isinstance(data, dict) or data.get("device_id") != device.id:
        raise InvalidActivation()
    lifetime = idp().settings.restore_code_lifetime
    tries = Limit("restore-activation", EMAIL_CODE_TRIES, lifetime)
    # Counted before the comparison: concurrent guesses cannot get past the limit.
    try:
        attempt = reserve(store, (tries, activation_id))
    except LimitReached:
        ACTIVATIONS.delete(activation_id)
        raise TooManyCodeAttempts() from None
    with attempt.given_back_on_error(WrongCode, TooManyCodeAttempts):
        typed = digits(code, EMAIL_CODE_DIGITS)
        ok = typed is not None and idp().digester.matches(
            typed, data["code_digest"], purpose=f"restore-activation:{activation_id}"
        )
        if not ok:
            audit.record("restoration_email_wrong_code", user_id=device.user_id,
                         device=device.id, failures=attempt.number(tries))  # fmt: skip
            if attempt.last_allowed(tries):
                ACTIVATIONS.delete(activation_id)
                raise TooManyCodeAttempts()
            raise WrongCode()
    if ACTIVATIONS.consume(activation_id) is None:
        raise InvalidActivation()  # a concurrent confirmation got there first
    user = device.user
    address = str(data["email"])
    if user.email and user.email.lower() != address.lower():
        raise InvalidActivation()  # the account's address changed meanwhile
    setup = restoration_setup(user.id, create=True)
    assert setup is not None
    if setup.is_active:
        raise RestorationAlreadyActive()
    if not user.email:
        user.email = address
    user.email_verified = True
    setup.email_confirmed_at = now
    code_1 = issue_code1(setup, device, now)
    setup.activated_at = now
    audit.record("restoration_email_confirmed", user_id=user.id, device=device.id)
    audit.record("restoration_activated", user_id=user.id, device=device.id,
                 email_confirmation=True)  # fmt: skip
    return Activation(email_masked=masked(address), code=code_1)


def regenerate(
    *, device: Device, nonce: str | None, assertion: CredentialJSON | None, now: datetime
) -> Activation:
    """A new code 1 (signed like activation, purpose
    "regenerate_restoration_code", payload ``{"nonce": nonce}``): the old one
    is void at once, and so is every restoration started with it."""
    taken = devices.take_action_nonce(nonce, device=device, purpose="regenerate_restoration_code")
    devices.verify_signed_action(
        device,
        purpose="regenerate_restoration_code",
        payload={"nonce": taken},
        assertion=assertion,
        now=now,
    )
    setup = restoration_setup(device.user_id)
    if setup is None or not setup.is_active:
        raise RestorationNotActive()
    code = issue_code1(setup, device, now)
    audit.record("restoration_code_regenerated", user_id=device.user_id,
                 device=device.id)  # fmt: skip
    email = device.user.email
    return Activation(email_masked=masked(email) if email else "", code=code)


# --- the veto window ---------------------------------------------------------------


def refuse_device(
    *,
    actor: Device,
    target_id: str,
    nonce: str | None,
    assertion: CredentialJSON | None,
    now: datetime,
    ip: str | None = None,
) -> RefusedDevice:
    """Refuse a restored device while it is pending (``restore_veto_window``).

    - the nonce is one the actor fetched for "refuse_device" (used up whatever
      follows);
    - the target is a device of the actor's user that is not removed (else
      ``device_not_found``) and still pending (else ``device_not_pending``);
    - the assertion is the actor's, with user verification, over
      ``action_challenge(purpose="refuse_device", payload={"device": target,
      "nonce": nonce})``.

    The device is revoked at once (its token answers ``device_revoked``), and
    ``device_revoked`` is sent: its approvals are cancelled and code 1, which
    it was shown, is void (``on_device_revoked``).
    """
    if not valid_id(target_id):
        raise DeviceNotFound()
    taken = devices.take_action_nonce(nonce, device=actor, purpose="refuse_device")
    target = db.session.get(Device, target_id)
    if target is None or target.user_id != actor.user_id or not target.is_active:
        raise DeviceNotFound()
    if not target.is_pending(now):
        raise DeviceNotPending()
    devices.verify_signed_action(
        actor,
        purpose="refuse_device",
        payload={"device": target.id, "nonce": taken},
        assertion=assertion,
        now=now,
    )
    try:
        devices.revoke_device(
            target,
            now=now,
            actor=f"device:{actor.id}",
            event="restore_vetoed",
            ip=ip,
            pending_only=True,
            actor_device=actor.id,
        )
    except DeviceNotFound:
        raise DeviceNotPending() from None  # removed, or the window ended, meanwhile
    setup = restoration_setup(actor.user_id)
    return RefusedDevice(
        device=target, actor=actor, restoration_active=setup is not None and setup.is_active
    )


def on_device_revoked(sender: object, *, device: Device, now: datetime, **extra: Any) -> None:
    """Receiver of ``idp.devices.service.device_revoking`` (connected in
    create_app), inside the revoking transaction: when the device that was
    shown the current code 1 is removed (refused, or deleted as "not me"),
    that code may be in the wrong hands, so it is void; restoration is
    inactive until activated again. The user is told by e-mail once the
    revocation has committed."""
    setup = restoration_setup(device.user_id)
    if setup is None or setup.code_digest is None or setup.code_device_id != device.id:
        return
    voided = db.session.execute(
        update(RestorationSetup)
        .where(
            RestorationSetup.user_id == device.user_id,
            RestorationSetup.code_device_id == device.id,
            RestorationSetup.code_digest == setup.code_digest,
        )
        .values(code_digest=None, code_device_id=None)
    )
    if not voided.rowcount:  # type: ignore[attr-defined]
        return
    audit.record("restoration_code_revoked", user_id=device.user_id,
                 device=device.id, reason="device_removed")  # fmt: skip
    user = db.session.get(User, device.user_id)
    if user is not None:
        send_code_revoked(user, device)
