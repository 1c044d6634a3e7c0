"""Restoration: the ID on another device (DESIGN §5).

Activation, from an enrolled device with a signed action (a fresh WebAuthn
assertion with user verification over ``action_challenge`` and a single-use
nonce from ``POST /device/v1/actions/challenge``): the account's e-mail
address is confirmed with a code unless it is already verified (an account
without one gives one), then restoration code 1 is shown once and kept as a
keyed digest. Regenerating replaces it the same way.

Restoring, on a new device without a token: login ID + code 1 (step 1) →
code 2 by e-mail and a notice to every device → code 2 (step 2) → WebAuthn
creation options (the device enrolment of ``idp.devices``, enrolled via
"restoration") → the registration (step 3) → the device and its token, code 1
rotated and the new one shown on the new device, notices to every other
device and to the e-mail address. Optionally (``restore_veto_window``) the
new device stays pending for a while and any other device can refuse it.

Every failure of steps 1-3 is the same ``restore_failed`` (the reason is in
the audit event only), failures are counted per login ID and per IP address,
and code 2 is bound to its attempt, single use, with few tries.

Redis keys (all with TTLs):
  restore:<id>             an attempt waiting for code 2
  restore-verified:<id>    code 2 was right; waiting for the registration
  restore-activation:<id>  an activation waiting for the e-mail code
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from .. import audit
from ..accounts.models import User
from ..accounts.service import find_user, normalise_identifier
from ..audit import AuditEvent
from ..devices import notices
from ..devices import service as devices
from ..devices.enrolment import add_device, announce_added, begin_registration, mask_destination
from ..devices.models import Device, DeviceKind, EnrolledVia
from ..devices.service import (
    DeviceNotFound,
    TooManyCodeAttempts,
    WrongCode,
    active_devices,
)
from ..errors import IdpError, InvalidRequest, Throttled
from ..extensions import db, insert_ignore, utcnow
from ..notify import DeliveryError
from ..state import idp
from ..store.ratelimit import Limit, LimitReached, Reservation, reserve, reset
from ..tokens import new_token
from ..webauthn import CredentialJSON, WebAuthnError
from .models import RestorationSetup

log = logging.getLogger(__name__)

# Code 1: 16 symbols of 32 (no 0/O, 1/I) = 80 random bits, shown "XXXX-XXXX-XXXX-XXXX".
CODE1_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE1_LENGTH = 16
# Code 2 (e-mailed during a restoration) and the e-mail confirmation code.
CODE2_DIGITS = 8
EMAIL_CODE_DIGITS = 6
# Wrong codes 2 per attempt before the attempt is void (they also count per
# login ID and per IP address); wrong e-mail confirmation codes per activation.
CODE2_TRIES = 3
EMAIL_CODE_TRIES = 5
# "Back up your identity" is asked at this login confirmed on a device.
BACKUP_PROMPT_AT_LOGIN = 6
# Compared against when there is no code 1 to compare with, so that an
# unknown ID takes the same path as a wrong code.
_NO_DIGEST = "0" * 64
_MAX_EMAIL = 254


class RestoreError(IdpError):
    error = "restore_error"
    status = 400


class RestoreFailed(RestoreError):
    # The same for an unknown login ID, restoration not active, a wrong code 1
    # or code 2, and an unknown, expired or used attempt: nothing tells which.
    error = "restore_failed"
    message = _l(
        "The identity could not be restored. Check the login ID and the restoration "
        "codes, or start again."
    )


class TooManyRestoreAttempts(Throttled, RestoreError):
    message = _l("Too many failed attempts. Please wait before trying again.")


class InvalidRestoreRequest(InvalidRequest, RestoreError):
    """Malformed input (400 invalid_request)."""


class RestorationNotActive(RestoreError):
    error = "restoration_not_active"
    status = 409
    message = _l("Restoration is not active for this ID. Please activate it first.")


class RestorationAlreadyActive(RestoreError):
    error = "restoration_already_active"
    status = 409
    message = _l("Restoration is already active for this ID.")


class EmailRequired(RestoreError):
    error = "email_required"
    message = _l(
        "Please enter an e-mail address. The second restoration code will be sent to it "
        "when you restore your ID."
    )


class EmailMismatch(RestoreError):
    error = "email_mismatch"
    message = _l("Your account already has an e-mail address; restoration codes are sent to it.")


class InvalidActivation(RestoreError):
    error = "invalid_activation"
    status = 404
    message = _l("This activation has expired. Please start again.")


class DeviceNotPending(RestoreError):
    error = "device_not_pending"
    status = 409
    message = _l("This device can no longer be refused. Remove it from your devices instead.")


@dataclass
class Attempt:
    """A restoration between step 1 and step 3 (in Redis)."""

    id: str
    user_id: int
    login_key: str  # the per-login-ID failure counter's subject
    device_name: str
    kind: str
    ip: str
    code1_digest: str  # code 1 as it was: a code 1 replaced meanwhile voids the attempt
    code2_digest: str | None = None
    enrolment_id: str | None = None


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
class StartedRestore:
    id: str
    email_masked: str
    expires_in: int


@dataclass(frozen=True)
class VerifiedRestore:
    id: str
    options_json: str
    expires_in: int


@dataclass(frozen=True)
class RestoredDevice:
    device: Device
    token: str
    code: str  # the new code 1, shown once on the new device
    pending_until: datetime | None


@dataclass(frozen=True)
class RefusedDevice:
    device: Device
    actor: Device
    restoration_active: bool


# --- codes ---------------------------------------------------------------------------


def new_code1() -> str:
    code = "".join(secrets.choice(CODE1_ALPHABET) for _ in range(CODE1_LENGTH))
    return "-".join(code[i : i + 4] for i in range(0, CODE1_LENGTH, 4))


def normalise_code1(text: str) -> str:
    """What the user typed, without grouping, spaces and case."""
    return "".join(c for c in text.upper() if c.isalnum())


def _code1_digest(user_id: int, code: str) -> str:
    return idp().digester.digest(normalise_code1(code), purpose=f"restoration-code:{user_id}")


def _digits(text: str, length: int) -> str | None:
    if len(text) > 32:
        return None
    digits = "".join(c for c in text if not c.isspace() and c != "-")
    return digits if len(digits) == length and digits.isascii() and digits.isdigit() else None


def _new_digits(length: int) -> str:
    return f"{secrets.randbelow(10**length):0{length}d}"


def _issue_code1(setup: RestorationSetup, device: Device, now: datetime) -> str:
    """A new code 1 for the setup (the old one is void once committed)."""
    code = new_code1()
    setup.code_digest = _code1_digest(setup.user_id, code)
    setup.code_device_id = device.id
    setup.rotated_at = now
    return code


def _masked(email: str) -> str:
    return mask_destination(email, "email")


def _valid_id(value: str) -> bool:
    return 0 < len(value) <= 64


# --- status and the "Back up your identity" prompt -------------------------------------


def _setup(user_id: int, *, create: bool = False) -> RestorationSetup | None:
    """The user's restoration row; with ``create``, made first if missing (an
    upsert: two requests making it at once both get the one row)."""
    setup: RestorationSetup | None = db.session.get(RestorationSetup, user_id)
    if setup is None and create:
        insert_ignore(RestorationSetup, {"user_id": user_id, "created_at": utcnow()},
                      key=["user_id"])  # fmt: skip
        setup = db.session.get(RestorationSetup, user_id)
    return setup


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
    setup = _setup(user.id)
    active = setup is not None and setup.is_active
    dismissed = setup is not None and setup.prompt_dismissed_at is not None
    prompt = not active and not dismissed and confirmed_logins(user.id) >= BACKUP_PROMPT_AT_LOGIN
    return RestorationStatus(
        active=active,
        email_masked=_masked(user.email) if user.email else None,
        email_confirmed=bool(user.email and user.email_verified),
        activated_at=setup.activated_at if setup and active else None,
        rotated_at=setup.rotated_at if setup and active else None,
        prompt_backup=prompt,
        pending_devices=[d for d in active_devices(user.id) if d.is_pending(now)],
    )


def dismiss_prompt(device: Device, now: datetime) -> None:
    """ "Not now": remembered for good; activation stays possible."""
    _setup(device.user_id, create=True)
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
    setup = _setup(user.id)
    if setup is not None and setup.is_active:
        raise RestorationAlreadyActive()
    if user.email and address and address.lower() != user.email.lower():
        raise EmailMismatch()
    if user.email and user.email_verified:
        setup = _setup(user.id, create=True)
        assert setup is not None
        code = _issue_code1(setup, device, now)
        setup.activated_at = now
        audit.record("restoration_activated", user_id=user.id, device=device.id,
                     email_confirmation=False)  # fmt: skip
        return Activation(email_masked=_masked(user.email), code=code)

    to = user.email or address
    if not to:
        raise EmailRequired()
    lifetime = idp().settings.restore_code_lifetime
    activation_id = new_token(16)
    code = _new_digits(EMAIL_CODE_DIGITS)
    record = {
        "user_id": user.id,
        "device_id": device.id,
        "email": to,
        "code_digest": idp().digester.digest(code, purpose=f"restore-activation:{activation_id}"),
    }
    idp().store.put("restore-activation", activation_id, record, ttl=lifetime)
    from .messages import send_activation_code

    try:
        send_activation_code(user, to, code)
    except DeliveryError:
        idp().store.delete("restore-activation", activation_id)
        raise
    audit.record("restoration_email_code_sent", user_id=user.id, device=device.id,
                 new_address=user.email is None)  # fmt: skip
    return Activation(email_masked=_masked(to), activation_id=activation_id, expires_in=lifetime)


def confirm_activation(
    *, device: Device, activation_id: str, code: str, now: datetime
) -> Activation:
    """The e-mail confirmation code of an activation: the address is confirmed
    (and becomes the account's, if it had none) and code 1 is returned once."""
    store = idp().store
    data = store.get("restore-activation", activation_id) if _valid_id(activation_id) else None
    # Only the device that started it may finish it.
    if not isinstance(data, dict) or data.get("device_id") != device.id:
        raise InvalidActivation()
    lifetime = idp().settings.restore_code_lifetime
    tries = Limit("restore-activation", EMAIL_CODE_TRIES, lifetime)
    # Counted before the comparison: concurrent guesses cannot get past the limit.
    try:
        attempt = reserve(store, (tries, activation_id))
    except LimitReached:
        store.delete("restore-activation", activation_id)
        raise TooManyCodeAttempts() from None
    with attempt.given_back_on_error(WrongCode, TooManyCodeAttempts):
        typed = _digits(code, EMAIL_CODE_DIGITS)
        ok = typed is not None and idp().digester.matches(
            typed, data["code_digest"], purpose=f"restore-activation:{activation_id}"
        )
        if not ok:
            audit.record("restoration_email_wrong_code", user_id=device.user_id,
                         device=device.id, failures=attempt.number(tries))  # fmt: skip
            if attempt.last_allowed(tries):
                store.delete("restore-activation", activation_id)
                raise TooManyCodeAttempts()
            raise WrongCode()
    if store.consume("restore-activation", activation_id) is None:
        raise InvalidActivation()  # a concurrent confirmation got there first
    user = device.user
    address = str(data["email"])
    if user.email and user.email.lower() != address.lower():
        raise InvalidActivation()  # the account's address changed meanwhile
    setup = _setup(user.id, create=True)
    assert setup is not None
    if setup.is_active:
        raise RestorationAlreadyActive()
    if not user.email:
        user.email = address
    user.email_verified = True
    setup.email_confirmed_at = now
    code_1 = _issue_code1(setup, device, now)
    setup.activated_at = now
    audit.record("restoration_email_confirmed", user_id=user.id, device=device.id)
    audit.record("restoration_activated", user_id=user.id, device=device.id,
                 email_confirmation=True)  # fmt: skip
    return Activation(email_masked=_masked(address), code=code_1)


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
    setup = _setup(device.user_id)
    if setup is None or not setup.is_active:
        raise RestorationNotActive()
    code = _issue_code1(setup, device, now)
    audit.record("restoration_code_regenerated", user_id=device.user_id,
                 device=device.id)  # fmt: skip
    email = device.user.email
    return Activation(email_masked=_masked(email) if email else "", code=code)


# --- restoring on a new device -----------------------------------------------------


def _limits() -> tuple[Limit, Limit]:
    s = idp().settings
    return (
        Limit("restore-login", s.restore_failures_per_login, s.restore_failure_window),
        Limit("restore-ip", s.restore_failures_per_ip, s.restore_failure_window),
    )


def _reserve(*counts: tuple[Limit, str], user_id: int | None) -> Reservation:
    """Count an attempt before its codes are compared (idp.store.ratelimit:
    concurrent guesses cannot get past a limit), or 429 while the IP address
    or the login ID is locked out: the same for an ID that does not exist."""
    try:
        return reserve(idp().store, *counts)
    except LimitReached as exc:
        scope = "ip" if exc.limit.name == "restore-ip" else "login_id"
        audit.record("restore_throttled", user_id=user_id, scope=scope)
        raise TooManyRestoreAttempts(retry_after=exc.retry_after) from None


def _fail(reason: str, *, user_id: int | None) -> NoReturn:
    """Record why (audit only) and answer the generic error."""
    audit.record("restore_failed", user_id=user_id, reason=reason)
    raise RestoreFailed()


def _fail_counted(reason: str, *, ip: str) -> NoReturn:
    """A failure that names no known attempt: counted for the IP address."""
    _, per_ip = _limits()
    _reserve((per_ip, ip), user_id=None)
    _fail(reason, user_id=None)


def _current_code1(user_id: int) -> str | None:
    setup = _setup(user_id)
    return setup.code_digest if setup is not None else None


def start_restore(
    *, login_id: str, code1: str, device_name: str, kind: DeviceKind, ip: str, now: datetime
) -> StartedRestore:
    """Step 1: login ID and code 1 (``device_name`` and ``kind`` checked by the
    caller, as for an enrolment). On success code 2 is e-mailed to the
    confirmed address and every device of the user gets a notice."""
    name, device_kind = device_name, kind
    identifier = normalise_identifier(login_id)[:254]
    store = idp().store
    lookup = find_user(identifier) if identifier else None
    user = lookup.user if lookup else None
    login_key = (
        f"user:{user.id}"
        if user is not None
        else "unknown:" + idp().digester.digest(identifier.lower(), purpose="restore-login-id")
    )
    per_login, per_ip = _limits()
    reserved = _reserve((per_ip, ip), (per_login, login_key), user_id=user.id if user else None)

    with reserved.given_back_on_error(RestoreFailed):
        # Looked up and compared in every case (for an unknown ID: user 0, which
        # does not exist, and a digest nothing matches), so that neither the
        # answer nor its timing tells an unknown ID from a wrong code.
        stored = _current_code1(user.id if user is not None else 0)
        typed = _code1_digest(user.id if user is not None else 0, code1[:64])
        matches = hmac.compare_digest(typed, stored or _NO_DIGEST)
        reason = None
        if user is None:
            reason = "ambiguous_email" if lookup and lookup.ambiguous_email else "unknown_id"
        elif stored is None:
            reason = "not_active"
        elif not matches:
            reason = "wrong_code1"
        elif not user.is_active:
            reason = "account_locked"
        elif not (user.email and user.email_verified):
            reason = "no_confirmed_email"
        if reason is not None or user is None or stored is None or not user.email:
            _fail(reason or "?", user_id=user.id if user else None)
    # The right code 1: not a failed attempt.
    reserved.give_back()

    lifetime = idp().settings.restore_code_lifetime
    code2 = _new_digits(CODE2_DIGITS)
    attempt = Attempt(
        id=new_token(16),
        user_id=user.id,
        login_key=login_key,
        device_name=name,
        kind=device_kind,
        ip=ip,
        code1_digest=stored,
    )
    attempt.code2_digest = idp().digester.digest(code2, purpose=f"restore-code2:{attempt.id}")
    # Redis first (the attempt, the notice to every device): if it is down,
    # no code 2 goes out and nothing is recorded.
    store.put("restore", attempt.id, asdict(attempt), ttl=lifetime)
    notices.post(
        user_id=user.id,
        notice_type=notices.RESTORE_STARTED,
        data={"device": {"name": name, "kind": device_kind}, "ip": ip},
        devices=active_devices(user.id),
        now=now,
    )
    from .messages import send_restore_code

    try:
        send_restore_code(user, code2, device_name=name, ip=ip)
    except DeliveryError:
        store.delete("restore", attempt.id)
        audit.record("restore_mail_failed", user_id=user.id)
        raise
    audit.record("restore_started", user_id=user.id, restoration=attempt.id, kind=device_kind,
                 device_name=name)  # fmt: skip
    return StartedRestore(id=attempt.id, email_masked=_masked(user.email), expires_in=lifetime)


def verify_code2(*, restore_id: str, code2: str, ip: str, now: datetime) -> VerifiedRestore:
    """Step 2: code 2 of this attempt (single use, ``CODE2_TRIES`` tries).
    Answers the WebAuthn creation options for the new device's key."""
    store = idp().store
    data = store.get("restore", restore_id) if _valid_id(restore_id) else None
    if not isinstance(data, dict):
        _fail_counted("unknown_restoration", ip=ip)
    attempt = Attempt(**data)
    if _current_code1(attempt.user_id) != attempt.code1_digest:
        store.delete("restore", attempt.id)
        _fail("code1_replaced", user_id=attempt.user_id)
    lifetime = idp().settings.restore_code_lifetime
    per_login, per_ip = _limits()
    tries = Limit("restore-tries", CODE2_TRIES, lifetime)
    # Each try counts (for the attempt, the login ID and the IP address)
    # before the code is compared, so that concurrent guesses cannot get past
    # any limit; a right code gives it back (and clears the login ID's count).
    try:
        reserved = reserve(store, (per_ip, ip), (per_login, attempt.login_key), (tries, attempt.id))
    except LimitReached as exc:
        if exc.limit != tries:
            audit.record("restore_throttled", user_id=attempt.user_id,
                         scope="ip" if exc.limit == per_ip else "login_id")  # fmt: skip
            raise TooManyRestoreAttempts(retry_after=exc.retry_after) from None
        store.delete("restore", attempt.id)
        _fail("too_many_tries", user_id=attempt.user_id)
    with reserved.given_back_on_error(RestoreFailed):
        typed = _digits(code2, CODE2_DIGITS)
        # The digest is bound to this attempt: a code 2 of another attempt fails.
        ok = (
            typed is not None
            and attempt.code2_digest is not None
            and idp().digester.matches(
                typed, attempt.code2_digest, purpose=f"restore-code2:{attempt.id}"
            )
        )
        if not ok:
            if reserved.last_allowed(tries):
                store.delete("restore", attempt.id)  # void: its right code fails too
            _fail("wrong_code2", user_id=attempt.user_id)
    reserved.give_back(per_ip)
    reserved.reset(per_login)
    # Single use: exactly one request moves the attempt on.
    if store.consume("restore", attempt.id) is None:
        _fail("used", user_id=attempt.user_id)
    user = db.session.get(User, attempt.user_id)
    if user is None or not user.is_active:
        _fail("account_locked", user_id=attempt.user_id)
    enrolment, options_json = begin_registration(
        user, via=EnrolledVia.RESTORATION, device_name=attempt.device_name, kind=attempt.kind
    )
    enrolment.save(lifetime)
    attempt.enrolment_id = enrolment.id
    attempt.code2_digest = None
    store.put("restore-verified", attempt.id, asdict(attempt), ttl=lifetime)
    audit.record("restore_code_verified", user_id=user.id, restoration=attempt.id)
    return VerifiedRestore(id=attempt.id, options_json=options_json, expires_in=lifetime)


def complete_restore(
    *, restore_id: str, credential: CredentialJSON, ip: str, now: datetime
) -> RestoredDevice:
    """Step 3: the new device's registration. The device is enrolled (via
    "restoration"), code 1 is rotated, and the user's other devices and
    e-mail address are told, naming the new device."""
    store = idp().store
    data = store.consume("restore-verified", restore_id) if _valid_id(restore_id) else None
    if not isinstance(data, dict):
        _fail_counted("unknown_restoration", ip=ip)
    attempt = Attempt(**data)
    assert attempt.enrolment_id is not None
    if _current_code1(attempt.user_id) != attempt.code1_digest:
        _fail("code1_replaced", user_id=attempt.user_id)
    try:
        # Added to this transaction, committed with code 1's rotation:
        # either both happen or neither.
        enrolled = add_device(attempt.enrolment_id, credential=credential,
                                      confirmation_code=None)  # fmt: skip
    except devices.InvalidEnrolment:
        _fail("enrolment_expired", user_id=attempt.user_id)
    except WebAuthnError as exc:
        audit.record("restore_failed", user_id=attempt.user_id, reason=f"webauthn:{exc.reason}")
        raise
    device, user = enrolled.device, enrolled.device.user

    window = idp().settings.restore_veto_window
    pending_until = now + timedelta(seconds=window) if window else None
    code = new_code1()
    # Rotated only if code 1 is still the one this attempt was started with:
    # of two restorations racing with the same code, one wins.
    rotated = db.session.execute(
        update(RestorationSetup)
        .where(
            RestorationSetup.user_id == user.id,
            RestorationSetup.code_digest == attempt.code1_digest,
        )
        .values(code_digest=_code1_digest(user.id, code), code_device_id=device.id, rotated_at=now)
    )
    if not rotated.rowcount:  # type: ignore[attr-defined]
        db.session.rollback()  # the new device goes with it
        _fail("code1_replaced", user_id=attempt.user_id)
    if pending_until is not None:
        device.pending_until = pending_until
    audit.record(
        "restore_completed", user_id=user.id, restoration=attempt.id,
        device=device.id, kind=device.kind,
        pending_until=_iso(pending_until) if pending_until else None,
    )  # fmt: skip
    db.session.flush()
    per_login, _ = _limits()
    reset(idp().store, per_login, attempt.login_key)

    # Once the restoration is committed, the other devices and the e-mail
    # address are told (idp.devices.changes, best effort).
    announce_added(device, ip=ip)
    return RestoredDevice(device=device, token=enrolled.token, code=code,
                          pending_until=pending_until)  # fmt: skip


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
    if not _valid_id(target_id):
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
    setup = _setup(actor.user_id)
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
    setup = _setup(device.user_id)
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
        from .messages import send_code_revoked

        send_code_revoked(user, device)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
