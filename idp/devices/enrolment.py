"""Device enrolment (DESIGN §4).

Enrolment is a short transaction in Redis: path A (identifier + password, then a
confirmation code by SMS or e-mail) or path B (a binding code from the account
page of a fully authenticated session). Either way it ends with "register
key": a WebAuthn registration with user verification, verified by
``idp.webauthn``, and a device API token shown once and stored as a digest.
A restoration (``idp.restore``) enrols its new device the same way.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from .. import audit
from ..accounts.models import User
from ..extensions import after_commit, db, insert_ignore
from ..state import idp
from ..store.kinds import Kind
from ..store.ratelimit import Limit, LimitReached, Reservation, reserve
from ..tokens import new_token
from ..webauthn import CredentialJSON, registration_options, verify_registration
from .messages import send_enrolment_code
from .models import Device, EnrolledVia, name_key
from .service import (
    InvalidBindingCode,
    InvalidDeviceRequest,
    InvalidEnrolment,
    TooManyCodeAttempts,
    WrongCode,
    device_added,
    distinct_device_name,
)

ENROLMENT_CODE_TRIES = 5
BINDING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
BINDING_LENGTH = 12  # 12 x 5 bits = 60 bits


@dataclass
class Enrolment:
    id: str
    user_id: int
    via: str
    device_name: str
    kind: str
    challenge: str  # hex of the WebAuthn registration challenge
    code_digest: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, ttl: int | None = None) -> None:
        ENROLMENTS.put(self.id, self, ttl=ttl)


# An enrolment under way, until the device completes it (single use).
ENROLMENTS = Kind("enrol", Enrolment, ttl=lambda s: s.enrolment_lifetime)
# A binding code from the account page (by its digest): {"user_id"}.
BINDING_CODES = Kind("bind", dict, ttl=lambda s: s.binding_code_lifetime)


@dataclass(frozen=True)
class StartedEnrolment:
    enrolment: Enrolment
    options_json: str
    channel: str | None = None
    destination: str | None = None


@dataclass(frozen=True)
class EnrolledDevice:
    device: Device
    token: str


def _reserve(*counts: tuple[Limit, str]) -> Reservation:
    """Count an attempt before it is checked, or TooManyCodeAttempts."""
    try:
        return reserve(idp().store, *counts)
    except LimitReached as exc:
        raise TooManyCodeAttempts(retry_after=exc.retry_after) from None


def begin_registration(
    user: User, *, via: str, device_name: str, kind: str
) -> tuple[Enrolment, str]:
    """A new enrolment of ``user`` (not saved yet) and the WebAuthn creation
    options for its key, with user verification required."""
    settings = idp().settings
    existing = db.session.scalars(
        select(Device.credential_id).where(Device.user_id == user.id, Device.revoked_at.is_(None))
    ).all()
    options = registration_options(
        rp_id=settings.rp_id,
        rp_name="Freigabe",
        user_handle=user.sub.encode(),
        user_name=user.username or user.access_number,
        user_display_name=user.name or user.email or user.access_number,
        exclude_credential_ids=list(existing),
        # A browser's device key is not a passkey: asked to keep it out of the
        # login page's passkey list (synced passkey providers may not listen).
        resident_key="discouraged" if kind == "browser" else "preferred",
    )
    enrolment = Enrolment(
        id=new_token(16),
        user_id=user.id,
        via=via,
        device_name=device_name,
        kind=kind,
        challenge=options.challenge.hex(),
    )
    return enrolment, options.json


def mask_destination(value: str, channel: str) -> str:
    if channel == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}•••@{domain}"
    digits = value.replace(" ", "")
    return f"{digits[:3]} ••• {digits[-2:]}"


def start_with_password(user: User, *, device_name: str, kind: str) -> StartedEnrolment:
    """Path A: the caller has verified the password; send a confirmation code."""
    settings = idp().settings
    enrolment, options_json = begin_registration(
        user,
        via=EnrolledVia.PASSWORD_SMS if user.phone_number else EnrolledVia.PASSWORD_EMAIL,
        device_name=device_name,
        kind=kind,
    )
    code = f"{secrets.randbelow(10**6):06d}"
    enrolment.code_digest = idp().digester.digest(code, purpose=f"enrol-code:{enrolment.id}")
    channel = "sms" if user.phone_number else "email"
    if channel == "email" and not user.email:
        raise InvalidDeviceRequest(
            _l("There is no phone number or e-mail address for this account."),
            detail="no confirmation channel",
        )
    enrolment.save(settings.enrolment_lifetime)
    send_enrolment_code(user, code, channel=channel)
    audit.record("device_enrolment_started", user_id=user.id, via=enrolment.via, kind=kind)
    destination = user.phone_number if channel == "sms" else user.email
    assert destination is not None
    return StartedEnrolment(
        enrolment=enrolment,
        options_json=options_json,
        channel=channel,
        destination=mask_destination(destination, channel),
    )


def new_binding_code(user: User) -> str:
    """Path B: a single-use code for the account page (60 bits, 10 minutes)."""
    code = "".join(secrets.choice(BINDING_ALPHABET) for _ in range(BINDING_LENGTH))
    digest = idp().digester.digest(code, purpose="binding-code")
    BINDING_CODES.put(digest, {"user_id": user.id})
    audit.record("binding_code_issued", user_id=user.id)
    return "-".join(code[i : i + 4] for i in range(0, BINDING_LENGTH, 4))


def start_with_binding_code(code: str, *, device_name: str, kind: str, ip: str) -> StartedEnrolment:
    settings = idp().settings
    per_ip = Limit("binding-ip", settings.login_failures_per_ip, settings.login_failure_window)
    # Counted before the code is looked up, so concurrent guesses cannot get
    # past the limit; a valid code gives the attempt back.
    attempt = _reserve((per_ip, ip))
    with attempt.given_back_on_error(InvalidBindingCode):
        normalised = "".join(c for c in code.upper() if c.isalnum())
        digest = idp().digester.digest(normalised, purpose="binding-code")
        data = BINDING_CODES.consume(digest)  # single use, atomically
        user = db.session.get(User, data["user_id"]) if data else None
        if user is None or not user.is_active:
            audit.record("binding_code_refused")
            raise InvalidBindingCode()
    attempt.give_back()
    enrolment, options_json = begin_registration(
        user, via=EnrolledVia.BINDING_CODE, device_name=device_name, kind=kind
    )
    enrolment.save(settings.enrolment_lifetime)
    audit.record("device_enrolment_started", user_id=user.id, via=enrolment.via, kind=kind)
    return StartedEnrolment(enrolment=enrolment, options_json=options_json)


def complete(
    enrolment_id: str,
    *,
    credential: CredentialJSON,
    confirmation_code: str | None,
    ip: str | None = None,
) -> EnrolledDevice:
    """ "Complete key registration": check the code, verify the registration,
    add the new device, and send ``device_added`` once it is committed."""
    enrolled = add_device(enrolment_id, credential=credential, confirmation_code=confirmation_code)
    announce_added(enrolled.device, ip=ip)
    return enrolled


# A name another request takes between our read of the names and our insert
# sends us to the next number; each try sees one more committed name.
NAME_TRIES = 5


def _insert_device(user_id: int, wanted_name: str, **values: Any) -> Device:
    """Insert the device under ``wanted_name``, numbered where another of the
    user's active devices has it (``distinct_device_name``). Two enrolments of
    one name at the same moment: the database's unique index lets one insert
    the name, and the other takes the next number instead of failing."""
    for _ in range(NAME_TRIES):
        name = distinct_device_name(user_id, wanted_name)
        inserted = insert_ignore(
            Device,
            {**values, "user_id": user_id, "name": name, "name_key": name_key(name)},
            key=["user_id", "name_key"],
            where=Device.revoked_at.is_(None),
        )
        if inserted:
            device = db.session.get(Device, values["id"])
            assert device is not None
            return device
    raise RuntimeError(f"no free device name after {NAME_TRIES} tries")


def announce_added(device: Device, *, ip: str | None) -> None:
    """``device_added`` for ``device``, once the unit of work has committed."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    after_commit(lambda: device_added.send(app, device=device, ip=ip))


def add_device(
    enrolment_id: str, *, credential: CredentialJSON, confirmation_code: str | None
) -> EnrolledDevice:
    """``complete`` without the commit and the signal: the device is added to
    the current transaction, which the caller commits with whatever else it
    changes (a restoration rotates code 1 in the same one, then sends
    ``device_added`` itself)."""
    settings = idp().settings
    # (Records stored by an earlier release may carry a "tries" member: the
    # kind ignores members the type lacks.)
    enrolment = ENROLMENTS.get(enrolment_id)
    if enrolment is None:
        raise InvalidEnrolment()
    if enrolment.code_digest is not None:
        tries = Limit("enrol-code", ENROLMENT_CODE_TRIES, settings.enrolment_lifetime)
        # Each try counts before the code is compared, so concurrent guesses
        # cannot get past the limit; used-up tries void the enrolment.
        try:
            attempt = reserve(idp().store, (tries, enrolment.id))
        except LimitReached:
            ENROLMENTS.delete(enrolment.id)
            raise TooManyCodeAttempts() from None
        with attempt.given_back_on_error(WrongCode, TooManyCodeAttempts):
            ok = confirmation_code is not None and idp().digester.matches(
                confirmation_code.strip(),
                enrolment.code_digest,
                purpose=f"enrol-code:{enrolment.id}",
            )
            if not ok:
                audit.record(
                    "device_enrolment_wrong_code",
                    user_id=enrolment.user_id,
                    failures=attempt.number(tries),
                )
                if attempt.last_allowed(tries):
                    ENROLMENTS.delete(enrolment.id)
                    raise TooManyCodeAttempts()
                raise WrongCode()
    # Single use from here on: a second completion finds nothing.
    if ENROLMENTS.consume(enrolment.id) is None:
        raise InvalidEnrolment()
    user = db.session.get(User, enrolment.user_id)
    if user is None or not user.is_active:
        raise InvalidEnrolment()
    verified = verify_registration(
        response=credential,
        expected_challenge=bytes.fromhex(enrolment.challenge),
        expected_origin=settings.issuer,
        rp_id=settings.rp_id,
    )
    taken = db.session.scalar(
        select(Device.id).where(Device.credential_id == verified.credential_id)
    )
    if taken is not None:
        raise InvalidDeviceRequest(detail="credential already registered")
    token = new_token(32)
    device = _insert_device(
        user.id,
        enrolment.device_name,
        id=new_token(12),
        kind=enrolment.kind,
        enrolled_via=enrolment.via,
        credential_id=verified.credential_id,
        public_key=verified.public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        attestation_fmt=verified.fmt,
        backup_eligible=verified.backup_eligible,
        backed_up=verified.backed_up,
        transports=list(verified.transports),
        token_digest=idp().digester.digest(token, purpose="device-token"),
    )
    audit.record(
        "device_enrolled",
        user_id=user.id,
        device=device.id,
        kind=device.kind,
        via=device.enrolled_via,
    )
    return EnrolledDevice(device=device, token=token)
