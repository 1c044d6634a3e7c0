"""Devices: the device API's authentication (its token), the user's devices,
signed actions, revoking and renaming. Enrolment is ``idp.devices.enrolment``.

Actions other than answering an approval (deleting a device, later activating
restoration) are signed over ``action_challenge(purpose, payload)`` whose
payload carries a single-use nonce the device fetched first
(``new_action_nonce``), so an action's assertion can never be replayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from blinker import Namespace
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..accounts.service import remember_language
from ..auth.sessions import end_sessions
from ..errors import IdpError, InvalidRequest, Throttled
from ..extensions import after_commit, db, utcnow
from ..push import Subscription
from ..state import idp
from ..store.kinds import Kind
from ..tokens import new_token
from ..webauthn import (
    CredentialJSON,
    VerifiedAssertion,
    WebAuthnError,
    action_challenge,
    verify_assertion,
)
from .models import MAX_DEVICE_NAME, Device, device_name, name_key

# Signed device actions (docs/device-api.md "Actions"): the purposes a nonce
# may be asked for, and how long it waits for the device's assertion (the
# user unlocks with biometrics or a PIN meanwhile).
ActionPurpose = Literal[
    "delete_device",
    # idp.restore: activate restoration, regenerate code 1, refuse a restored device.
    "activate_restoration",
    "regenerate_restoration_code",
    "refuse_device",
]
ACTION_PURPOSES: tuple[str, ...] = get_args(ActionPurpose)
# Why a device is deleted, where the person says (the audit log keeps it).
# "lost_or_stolen" signs out everywhere the device confirmed a sign-in unless
# the person says otherwise (``sign_out_by_default``).
DeletionReason = Literal["lost_or_stolen", "no_longer_used"]
DELETION_REASONS: tuple[str, ...] = get_args(DeletionReason)
ACTION_NONCE_LIFETIME = 300
# A nonce handed to a device for one signed action: {"device", "purpose"}.
ACTION_NONCES = Kind("action-nonce", dict, ttl=lambda s: ACTION_NONCE_LIFETIME)

_signals = Namespace()
# Sent (sender: the app) while a device is being revoked, inside the
# revoking transaction before it commits, with ``device`` and ``now``:
# receivers add what must change with it (approvals cancelled, code 1 void)
# and never commit. Receivers (approvals, restore) are connected in
# create_app: devices must not import the packages that depend on them.
device_revoking = _signals.signal("device-revoking")
# Sent after the revocation committed, with ``device``, ``now``, ``actor``
# (as in the audit log: ``device:ID``, ``user:ID``, ``admin:ID``, ...), ``ip``
# (None: not known) and ``refused`` (True: refused in a restoration's veto
# window): for side effects (idp.devices.changes tells the user).
device_revoked = _signals.signal("device-revoked")
# Sent (sender: the app) after a new device was committed, with ``device`` and
# ``ip`` (None: not known); for a restored device by idp.restore, once code 1
# was rotated. The receiver (changes) tells the user.
device_added = _signals.signal("device-added")


class DeviceError(IdpError):
    error = "device_error"
    status = 400


class DeviceRevoked(DeviceError):
    error = "device_revoked"
    status = 401
    message = _l("This device has been removed from your account.")


class DevicePending(DeviceError):
    # Restored within a veto window (idp.restore): usable once it has passed.
    error = "device_pending"
    status = 403
    message = _l(
        "This device can be used once the waiting period after the restoration has passed."
    )


class InvalidDeviceToken(DeviceError):
    error = "invalid_token"
    status = 401
    message = _l("The device is not recognised.")


class InvalidEnrolment(DeviceError):
    error = "invalid_enrolment"
    status = 404
    message = _l("This registration has expired. Please start again.")


class WrongCode(DeviceError):
    error = "wrong_code"
    message = _l("The code is not correct.")


class TooManyCodeAttempts(Throttled, DeviceError):
    message = _l("Too many wrong codes. Please start again later.")


class InvalidBindingCode(DeviceError):
    error = "invalid_binding_code"
    message = _l("The binding code is not valid or has expired.")


class InvalidDeviceRequest(InvalidRequest, DeviceError):
    """Malformed input (400 invalid_request)."""


class DeviceNameTaken(InvalidRequest, DeviceError):
    error = "name_taken"
    message = _l(
        "Another of your devices already has this name. Please choose another name, so that "
        "you can tell them apart."
    )


class DeviceNotFound(DeviceError):
    # Also for another user's device: device ids are not confirmed to strangers.
    error = "device_not_found"
    status = 404
    message = _l("There is no such device on your account.")


class PasswordChangeRequired(DeviceError):
    # An administrator forced a password reset: the old password enrols nothing;
    # the new one is chosen at the next sign-in on the web (idp.auth.views).
    error = "password_change_required"
    status = 403
    message = _l("Please sign in on the web first and choose a new password.")


class InvalidActionNonce(DeviceError):
    # Unknown, used, expired, or issued to another device or for another action.
    error = "invalid_nonce"
    message = _l("This confirmation has expired or was already used. Please try again.")


@dataclass(frozen=True)
class ActionNonce:
    nonce: str
    purpose: ActionPurpose
    expires_in: int


@dataclass(frozen=True)
class DeletedDevice:
    """A device deleted (revoked) by ``actor``, one of the same user's devices."""

    device: Device
    actor: Device
    # The actor deleted itself (un-enrolled).
    deleted_itself: bool
    # Active devices the user has left.
    remaining: int
    sign_count_regressed: bool
    # The login sessions it confirmed were ended too.
    signed_out: bool = False


def sign_out_by_default(reason: str | None) -> bool:
    """Whether deleting a device for ``reason`` also ends the login sessions
    it confirmed when the person did not choose: for a lost or stolen one."""
    return reason == "lost_or_stolen"


def device_for_token(token: str | None) -> Device:
    if not token:
        raise InvalidDeviceToken()
    digest = idp().digester.digest(token, purpose="device-token")
    device: Device | None = db.session.scalar(select(Device).where(Device.token_digest == digest))
    if device is None:
        raise InvalidDeviceToken()
    if not device.is_active or not device.user.is_active:
        raise DeviceRevoked()
    now = utcnow()
    if device.is_pending(now):
        assert device.pending_until is not None
        raise DevicePending(retry_after=max(1, int((device.pending_until - now).total_seconds())))
    # The device's Accept-Language is its person's: what they cause from it
    # (a fraud report's e-mail, a restoration's) is in that language.
    remember_language(device.user)
    return device


def active_devices(user_id: int) -> list[Device]:
    return list(
        db.session.scalars(
            select(Device)
            .where(Device.user_id == user_id, Device.revoked_at.is_(None))
            .order_by(Device.created_at)
        )
    )


def record_use(device: Device, *, old_sign_count: int, new_sign_count: int, now: datetime) -> bool:
    """Store the new signature counter in the current transaction (the caller
    commits it with the rest of what the use changed); False if another
    request got there first (a concurrent use of the same counter: the
    conditional UPDATE waits for it, then matches nothing)."""
    result = db.session.execute(
        update(Device)
        .where(Device.id == device.id, Device.sign_count == old_sign_count)
        .values(sign_count=new_sign_count, last_used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def new_action_nonce(*, device: Device, purpose: ActionPurpose) -> ActionNonce:
    """A single-use nonce for one signed action of ``device`` (TTL'd in Redis)."""
    nonce = new_token(24)
    ACTION_NONCES.put(nonce, {"device": device.id, "purpose": purpose})
    return ActionNonce(nonce=nonce, purpose=purpose, expires_in=ACTION_NONCE_LIFETIME)


def take_action_nonce(nonce: str | None, *, device: Device, purpose: ActionPurpose) -> str:
    """Consume ``nonce`` (GETDEL: whatever follows, it is spent) and check that
    it was issued to ``device`` for ``purpose``."""
    if not nonce or len(nonce) > 64:
        raise InvalidActionNonce()
    data = ACTION_NONCES.consume(nonce)
    if not isinstance(data, dict) or data.get("device") != device.id:
        raise InvalidActionNonce()
    if data.get("purpose") != purpose:
        raise InvalidActionNonce()
    return nonce


def verify_signed_action(
    device: Device,
    *,
    purpose: ActionPurpose,
    payload: dict[str, str],
    assertion: CredentialJSON | None,
    now: datetime,
) -> VerifiedAssertion:
    """The device's own credential, with user verification, signed exactly this
    action (``action_challenge``); its signature counter moves forward. No
    assertion at all fails as a malformed one."""
    settings = idp().settings
    old_count = device.sign_count
    verified = verify_assertion(
        response=assertion if assertion is not None else {},
        expected_challenge=action_challenge(purpose=purpose, payload=payload),
        expected_origin=settings.issuer,
        rp_id=settings.rp_id,
        credential_public_key=device.public_key,
        current_sign_count=old_count,
        expected_credential_id=device.credential_id,
        expected_user_handle=device.user.sub.encode(),
    )
    if not record_use(
        device, old_sign_count=old_count, new_sign_count=verified.new_sign_count, now=now
    ):
        # Another assertion with the same counter was accepted meanwhile.
        db.session.rollback()
        raise WebAuthnError(reason="sign_count_regressed", explanation="counter used concurrently")
    return verified


def delete_device(
    *,
    actor: Device,
    target_id: str,
    nonce: str | None,
    assertion: CredentialJSON | None,
    now: datetime,
    ip: str | None = None,
    reason: DeletionReason | None = None,
    sign_out: bool | None = None,
) -> DeletedDevice:
    """Delete (revoke) one of the user's devices, on the word of another one
    or of itself (DESIGN §4).

    Rules, each with its own error:
    - the nonce is one this actor fetched for "delete_device", unused and
      unexpired; it is consumed before anything is verified, so an assertion
      over it can be sent once only (else ``invalid_nonce``);
    - the target is an active device of the actor's user (else
      ``device_not_found``, also for another user's device);
    - the assertion is the actor's credential's, with user verification, over
      ``action_challenge(purpose="delete_device", payload={"device": target,
      "nonce": nonce})`` (with ``"reason"`` and ``"sign_out"`` ("yes" or "no")
      added where the request gave them, so that what the device was asked
      is what it signed), and its signature counter moves forward (else
      ``webauthn_failed``);
    - only one deletion takes the device (``revoke_device``).
    """
    if not target_id or len(target_id) > 64:
        raise DeviceNotFound()
    taken = take_action_nonce(nonce, device=actor, purpose="delete_device")
    target = db.session.get(Device, target_id)
    if target is None or target.user_id != actor.user_id or not target.is_active:
        raise DeviceNotFound()

    payload = {"device": target.id, "nonce": taken}
    if reason is not None:
        payload["reason"] = reason
    if sign_out is not None:
        payload["sign_out"] = "yes" if sign_out else "no"
    verified = verify_signed_action(
        actor,
        purpose="delete_device",
        payload=payload,
        assertion=assertion,
        now=now,
    )

    signing_out = sign_out_by_default(reason) if sign_out is None else sign_out
    remaining = revoke_device(
        target,
        now=now,
        actor=f"device:{actor.id}",
        ip=ip,
        reason=reason,
        sign_out=signing_out,
        actor_device=actor.id,
    )
    return DeletedDevice(
        device=target,
        actor=actor,
        deleted_itself=target.id == actor.id,
        remaining=remaining,
        sign_count_regressed=verified.sign_count_regressed,
        signed_out=signing_out,
    )


def revoke_device(
    target: Device,
    *,
    now: datetime,
    actor: str,
    ip: str | None = None,
    event: str = "device_deleted",
    pending_only: bool = False,
    reason: DeletionReason | None = None,
    sign_out: bool = False,
    **details: str,
) -> int:
    """Revoke ``target`` at once (DESIGN §4), on anyone's word that was checked
    already: a device's signed action, the account page after MFA, or an
    administrator. ``actor`` names them in the audit log (``device:ID``,
    ``user:ID``, ``admin:ID``), ``ip`` is where the request came from (None: not
    known, as for the idp command), ``event`` is the audit event (a refused
    restored device: ``restore_vetoed``, with ``pending_only``: only while it
    is pending). Returns how many active devices the user has left.

    Only one revocation takes the device (conditional UPDATE; else
    ``DeviceNotFound``). Its token answers ``device_revoked`` from now on and
    its push subscription is dropped. In the same transaction, before it
    commits, ``device_revoking`` is sent: approvals no active device can
    answer any more are cancelled, and a code 1 the device was shown is void;
    if any of that fails (Redis down), nothing is revoked and the request
    fails as a whole. Once the unit of work has committed, ``device_revoked``
    is sent.

    ``sign_out``: also end every login session the device confirmed (its
    approval signed the browser in), in the same transaction: their refresh
    tokens are revoked, and their clients get a Logout Token once it commits
    (``idp.auth.sessions.end_sessions``). Their access tokens go in one Redis
    script after ``device_revoking``: Redis down before it, no token is
    revoked; down during it, none either (approvals only this device could
    answer may have been cancelled by then: a login waiting on them is
    started again). ``reason``: why, as the person said.
    """
    condition = [Device.id == target.id, Device.revoked_at.is_(None)]
    if pending_only:
        condition.append(Device.pending_until > now)
    revoked = db.session.execute(
        update(Device).where(*condition).values(revoked_at=now, push_subscription=None)
    )
    if not revoked.rowcount:  # type: ignore[attr-defined]
        db.session.rollback()
        raise DeviceNotFound()  # deleted by a concurrent request
    audit.record(
        event,
        user_id=target.user_id,
        actor=actor,
        device=target.id,
        kind=target.kind,
        **({"reason": reason} if reason else {}),
        sign_out=sign_out,
        **details,
    )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    device_revoking.send(app, device=target, now=now)
    if sign_out:
        # After device_revoking: its Redis step (the access tokens, in one
        # script) is the last, so that a Redis outage before it revokes no
        # token, and one during it none either.
        end_sessions(target.user_id, device_id=target.id, actor=actor, reason="device_deleted")
    db.session.flush()
    db.session.refresh(target)
    after_commit(
        lambda: device_revoked.send(
            app, device=target, now=now, actor=actor, ip=ip, refused=pending_only
        )
    )
    return len(active_devices(target.user_id))


def _names_in_use(user_id: int) -> set[str]:
    """The ``name_key`` of each of the user's active devices."""
    return set(
        db.session.scalars(
            select(Device.name_key).where(Device.user_id == user_id, Device.revoked_at.is_(None))
        )
    )


def distinct_device_name(user_id: int, wanted: str) -> str:
    """``wanted``, or ``wanted (2)``, ``(3)``... if another of the user's active
    devices has that name: the list, the notices and "delete" must tell them
    apart (a rename to a taken name is refused instead)."""
    taken = _names_in_use(user_id)
    if name_key(wanted) not in taken:
        return wanted
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = wanted[: MAX_DEVICE_NAME - len(suffix)] + suffix
        if name_key(candidate) not in taken:
            return candidate
        number += 1


def rename_device(target: Device, name: str, *, actor: str) -> Device:
    """Give one of the user's active devices a new name (1 to 100 characters,
    white space collapsed), on the word of ``actor`` (as in ``revoke_device``)."""
    try:
        new_name = device_name(name)
    except ValueError as exc:
        raise InvalidDeviceRequest(fields={"name": str(exc)}) from None
    if not target.is_active:
        raise DeviceNotFound()
    # Two active devices of one user never get the same name by a rename: the
    # list, the notices and "delete" could not tell them apart.
    key = name_key(new_name)
    if key != target.name_key and key in _names_in_use(target.user_id):
        raise DeviceNameTaken(fields={"name": "already used by another device"})
    old_name, target.name = target.name, new_name
    try:
        db.session.flush()
    except IntegrityError:
        # Another request gave one of the user's devices this name between
        # the check above and this write (the database's unique index).
        db.session.rollback()
        raise DeviceNameTaken(fields={"name": "already used by another device"}) from None
    audit.record(
        "device_renamed",
        user_id=target.user_id,
        actor=actor,
        device=target.id,
        old_name=old_name,
        name=new_name,
    )
    return target


def set_push_subscription(device: Device, subscription: Subscription | None) -> None:
    device.push_subscription = subscription.as_dict() if subscription is not None else None


def describe(device: Device, *, current: Device | None = None) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "kind": device.kind,
        "enrolled_via": device.enrolled_via,
        "created_at": _iso(device.created_at),
        "last_used_at": _iso(device.last_used_at),
        "this_device": current is not None and current.id == device.id,
    }


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
