"""Restoring the ID on a new device (DESIGN §5); activation and the rest of
an enrolled device's part is ``idp.restore.activation``.

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
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from sqlalchemy import update

from .. import audit
from ..accounts.models import User
from ..accounts.service import find_user, normalise_identifier, remember_language
from ..devices import notices
from ..devices import service as devices
from ..devices.enrolment import add_device, announce_added, begin_registration
from ..devices.models import Device, DeviceKind, EnrolledVia
from ..devices.service import active_devices
from ..extensions import db
from ..notify import DeliveryError
from ..state import idp
from ..store.kinds import Kind
from ..store.ratelimit import Limit, LimitReached, Reservation, reserve, reset
from ..tokens import new_token
from ..webauthn import CredentialJSON, WebAuthnError
from .codes import (
    CODE2_DIGITS,
    CODE2_TRIES,
    code1_digest,
    current_code1,
    digits,
    masked,
    new_code1,
    new_digits,
    valid_id,
)
from .errors import RestoreFailed, TooManyRestoreAttempts
from .messages import send_restore_code
from .models import RestorationSetup

# Compared against when there is no code 1 to compare with, so that an
# unknown ID takes the same path as a wrong code.
_NO_DIGEST = "0" * 64


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


# A restoration between step 1 and step 2, and between step 2 and step 3.
ATTEMPTS = Kind("restore", Attempt, ttl=lambda s: s.restore_code_lifetime)
VERIFIED = Kind("restore-verified", Attempt, ttl=lambda s: s.restore_code_lifetime)


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


# --- restoring on a new device -----------------------------------------------------


def limits() -> tuple[Limit, Limit]:
    """The failure limits of restoring: per login ID and per IP address."""
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
    _, per_ip = limits()
    _reserve((per_ip, ip), user_id=None)
    _fail(reason, user_id=None)


def start_restore(
    *, login_id: str, code1: str, device_name: str, kind: DeviceKind, ip: str, now: datetime
) -> StartedRestore:
    """Step 1: login ID and code 1 (``device_name`` and ``kind`` checked by the
    caller, as for an enrolment). On success code 2 is e-mailed to the
    confirmed address and every device of the user gets a notice."""
    name, device_kind = device_name, kind
    identifier = normalise_identifier(login_id)[:254]
    lookup = find_user(identifier) if identifier else None
    user = lookup.user if lookup else None
    login_key = (
        f"user:{user.id}"
        if user is not None
        else "unknown:" + idp().digester.digest(identifier.lower(), purpose="restore-login-id")
    )
    per_login, per_ip = limits()
    reserved = _reserve((per_ip, ip), (per_login, login_key), user_id=user.id if user else None)

    with reserved.given_back_on_error(RestoreFailed):
        # Looked up and compared in every case (for an unknown ID: user 0, which
        # does not exist, and a digest nothing matches), so that neither the
        # answer nor its timing tells an unknown ID from a wrong code.
        stored = current_code1(user.id if user is not None else 0)
        typed = code1_digest(user.id if user is not None else 0, code1[:64])
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
    remember_language(user)  # code 2 goes out in the language of this request

    lifetime = idp().settings.restore_code_lifetime
    code2 = new_digits(CODE2_DIGITS)
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
    ATTEMPTS.put(attempt.id, attempt, ttl=lifetime)
    notices.post(
        user_id=user.id,
        notice_type=notices.RESTORE_STARTED,
        data={"device": {"name": name, "kind": device_kind}, "ip": ip},
        devices=active_devices(user.id),
        now=now,
    )
    try:
        send_restore_code(user, code2, device_name=name, ip=ip)
    except DeliveryError:
        ATTEMPTS.delete(attempt.id)
        audit.record("restore_mail_failed", user_id=user.id)
        raise
    audit.record("restore_started", user_id=user.id, restoration=attempt.id, kind=device_kind,
                 device_name=name)  # fmt: skip
    return StartedRestore(id=attempt.id, email_masked=masked(user.email), expires_in=lifetime)


def verify_code2(*, restore_id: str, code2: str, ip: str, now: datetime) -> VerifiedRestore:
    """Step 2: code 2 of this attempt (single use, ``CODE2_TRIES`` tries).
    Answers the WebAuthn creation options for the new device's key."""
    store = idp().store
    attempt = ATTEMPTS.get(restore_id) if valid_id(restore_id) else None
    if attempt is None:
        _fail_counted("unknown_restoration", ip=ip)
    if current_code1(attempt.user_id) != attempt.code1_digest:
        ATTEMPTS.delete(attempt.id)
        _fail("code1_replaced", user_id=attempt.user_id)
    lifetime = idp().settings.restore_code_lifetime
    per_login, per_ip = limits()
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
        ATTEMPTS.delete(attempt.id)
        _fail("too_many_tries", user_id=attempt.user_id)
    with reserved.given_back_on_error(RestoreFailed):
        typed = digits(code2, CODE2_DIGITS)
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
                ATTEMPTS.delete(attempt.id)  # void: its right code fails too
            _fail("wrong_code2", user_id=attempt.user_id)
    reserved.give_back(per_ip)
    reserved.reset(per_login)
    # Single use: exactly one request moves the attempt on.
    if ATTEMPTS.consume(attempt.id) is None:
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
    VERIFIED.put(attempt.id, attempt, ttl=lifetime)
    audit.record("restore_code_verified", user_id=user.id, restoration=attempt.id)
    return VerifiedRestore(id=attempt.id, options_json=options_json, expires_in=lifetime)


def complete_restore(
    *, restore_id: str, credential: CredentialJSON, ip: str, now: datetime
) -> RestoredDevice:
    """Step 3: the new device's registration. The device is enrolled (via
    "restoration"), code 1 is rotated, and the user's other devices and
    e-mail address are told, naming the new device."""
    attempt = VERIFIED.consume(restore_id) if valid_id(restore_id) else None
    if attempt is None:
        _fail_counted("unknown_restoration", ip=ip)
    assert attempt.enrolment_id is not None
    if current_code1(attempt.user_id) != attempt.code1_digest:
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
        .values(code_digest=code1_digest(user.id, code), code_device_id=device.id, rotated_at=now)
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
    per_login, _ = limits()
    reset(idp().store, per_login, attempt.login_key)

    # Once the restoration is committed, the other devices and the e-mail
    # address are told (idp.devices.changes, best effort).
    announce_added(device, ip=ip)
    return RestoredDevice(device=device, token=enrolled.token, code=code,
                          pending_until=pending_until)  # fmt: skip


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
