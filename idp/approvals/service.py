"""The approval lifecycle: the second factor confirmed on the user's device.

An approval lives in Redis. It is created after the first factor for one
login transaction (one live approval per login), pushed to the user's devices,
answered once by a device with a WebAuthn assertion over the canonical
challenge (DESIGN §3.6), and the answer wakes the waiting browser through
Redis pub/sub, whichever instance it is connected to.

Keys (all with TTLs):
  approval:<id>         the record (kept a while after the answer for the page)
  approval-open:<id>    present while it may be answered; GETDEL by the winner
  approval-grant:<id>   set on approval; consumed once by the browser to sign in
  push-block:<user>     set by "deny and report fraud"
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from flask_babel import lazy_gettext as _l

from .. import audit, idp
from ..accounts.models import User
from ..devices.models import Device
from ..devices.push import push_to_devices
from ..devices.service import active_devices, record_use
from ..errors import IdpError
from ..store.ratelimit import FailureCounter, Limit
from ..tokens import new_token
from ..webauthn import approval_challenge, verify_assertion

log = logging.getLogger(__name__)

PENDING, APPROVED, DENIED, EXPIRED, CANCELLED = (
    "pending",
    "approved",
    "denied",
    "expired",
    "cancelled",
)
FINAL = frozenset({APPROVED, DENIED, EXPIRED, CANCELLED})
KEEP_AFTER_EXPIRY = 300  # the waiting page may still ask for a while


class ApprovalError(IdpError):
    error = "approval_error"
    status = 400


class ApprovalNotFound(ApprovalError):
    # Also for another user's approval: ids are not confirmed to strangers.
    error = "approval_not_found"
    status = 404
    message = _l("This approval request does not exist.")


class ApprovalExpired(ApprovalError):
    error = "approval_expired"
    status = 410
    message = _l("This approval request has expired.")


class ApprovalAlreadyAnswered(ApprovalError):
    error = "approval_already_answered"
    status = 409
    message = _l("This approval request has already been answered.")


class WrongMatchCode(ApprovalError):
    error = "wrong_code"
    message = _l("The number does not match the one shown in the browser.")


class TooManyWrongCodes(ApprovalError):
    error = "too_many_attempts"
    status = 429
    message = _l("Too many wrong numbers. Please wait before trying again.")


class PushesBlocked(ApprovalError):
    error = "approvals_blocked"
    status = 429
    message = _l(
        "Sign-in confirmations for this account are paused for a while after a report "
        "of a sign-in attempt that was not made by you."
    )


class TooManyApprovals(ApprovalError):
    error = "too_many_approvals"
    status = 429
    message = _l("Too many sign-in confirmations were requested. Please wait a few minutes.")


class InvalidAnswer(ApprovalError):
    error = "invalid_request"
    message = _l("The answer is not valid.")


@dataclass
class Approval:
    id: str
    user_id: int
    tx_id: str | None
    client_id: str
    client_name: str
    ip: str | None
    user_agent: str | None
    created_at: str
    expires_at: int  # epoch seconds
    code_digest: str
    status: str = PENDING
    device_id: str | None = None
    device_amr: str | None = None
    # The devices it was aimed at (the user's active devices when it was made):
    # only these may answer it. None in records made before this member existed.
    device_ids: list[str] | None = None

    def aimed_at(self, device: Device) -> bool:
        return device.user_id == self.user_id and (
            self.device_ids is None or device.id in self.device_ids
        )

    @property
    def context(self) -> dict[str, Any]:
        """What the device shows and signs (hashed into the challenge)."""
        return {
            "approval": self.id,
            "client_id": self.client_id,
            "client_name": self.client_name,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "created_at": self.created_at,
        }

    def expired(self, now: datetime) -> bool:
        return now.timestamp() >= self.expires_at

    def public(self, now: datetime) -> dict[str, Any]:
        status = EXPIRED if self.status == PENDING and self.expired(now) else self.status
        return {
            "id": self.id,
            "status": status,
            "client_name": self.client_name,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "created_at": self.created_at,
            "expires_at": _iso(datetime.fromtimestamp(self.expires_at, UTC)),
            "context": self.context,
        }


@dataclass(frozen=True)
class StartedApproval:
    approval: Approval
    match_code: str
    devices: int


@dataclass(frozen=True)
class VerifiedAnswer:
    approval: Approval
    decision: Literal["approve", "deny"]
    fraud: bool
    sign_count_regressed: bool


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _code_digest(approval_id: str, code: str) -> str:
    return idp().digester.digest(code, purpose=f"match-code:{approval_id}")


def _counters() -> tuple[FailureCounter, FailureCounter]:
    s = idp().settings
    store = idp().store
    return (
        # NIST SP 800-63B-4 §3.2.2: failed attempts count per user, across
        # approvals: a new approval does not reset them.
        FailureCounter(store, Limit("approval-code", s.approval_code_failures, s.approval_window)),
        FailureCounter(store, Limit("approval-push", s.approval_push_limit, s.approval_window)),
    )


def channel(approval_id: str) -> str:
    return idp().store.channel("approval", approval_id)


def user_channel(user_id: int) -> str:
    return idp().store.channel("user-approvals", str(user_id))


def save(approval: Approval) -> None:
    ttl = max(1, approval.expires_at - int(datetime.now(UTC).timestamp())) + KEEP_AFTER_EXPIRY
    idp().store.put("approval", approval.id, asdict(approval), ttl=ttl)


def load(approval_id: str | None) -> Approval | None:
    if not approval_id or not isinstance(approval_id, str) or len(approval_id) > 64:
        return None
    data = idp().store.get("approval", approval_id)
    return Approval(**data) if data else None


def _publish(approval: Approval) -> None:
    message = json.dumps({"id": approval.id, "status": approval.status})
    idp().store.redis.publish(channel(approval.id), message)


def start(
    *,
    user: User,
    client_id: str,
    client_name: str,
    tx_id: str | None,
    previous_id: str | None,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
) -> StartedApproval:
    """A new approval for one login; the login's previous one is cancelled."""
    settings = idp().settings
    store = idp().store
    if store.exists("push-block", str(user.id)):
        audit.record("approval_blocked", user_id=user.id, client_id=client_id)
        raise PushesBlocked(retry_after=max(1, store.ttl("push-block", str(user.id))))
    wrong_codes, pushes = _counters()
    if wrong_codes.blocked(str(user.id)):
        raise TooManyWrongCodes(retry_after=wrong_codes.retry_after(str(user.id)))
    if pushes.blocked(str(user.id)):
        audit.record("approval_push_limit", user_id=user.id, client_id=client_id)
        raise TooManyApprovals(retry_after=pushes.retry_after(str(user.id)))
    if previous_id:
        cancel(previous_id, reason="replaced")
    pushes.record_failure(str(user.id))  # counts pushes, not failures

    digits = settings.approval_code_digits
    code = f"{secrets.randbelow(10**digits):0{digits}d}"
    approval_id = new_token(16)
    approval = Approval(
        id=approval_id,
        user_id=user.id,
        tx_id=tx_id,
        client_id=client_id,
        client_name=client_name,
        ip=ip,
        user_agent=(user_agent or "")[:256] or None,
        created_at=_iso(now),
        expires_at=int(now.timestamp()) + settings.approval_lifetime,
        code_digest=_code_digest(approval_id, code),
    )
    devices = active_devices(user.id)
    approval.device_ids = [d.id for d in devices]
    save(approval)
    store.put("approval-open", approval.id, 1, ttl=settings.approval_lifetime)
    store.index_add("approvals-user", str(user.id), approval.id, ttl=settings.approval_lifetime)
    audit.record(
        "approval_requested", user_id=user.id, client_id=client_id, approval=approval.id,
        devices=len(devices),
    )  # fmt: skip
    store.redis.publish(user_channel(user.id), json.dumps({"id": approval.id}))
    # Only the id travels; the device fetches the rest (and the number is never sent).
    push_to_devices(
        devices,
        {"type": "approval", "id": approval.id},
        ttl=approval.expires_at - int(time.time()),
    )
    return StartedApproval(approval=approval, match_code=code, devices=len(devices))


def cancel(approval_id: str, *, reason: str) -> None:
    approval = load(approval_id)
    if approval is None:
        return
    if idp().store.consume("approval-open", approval_id) is not None:
        approval.status = CANCELLED
        save(approval)
        _publish(approval)
        audit.record("approval_cancelled", user_id=approval.user_id, approval=approval_id,
                     reason=reason)  # fmt: skip


def pending_for(user_id: int, now: datetime, *, device: Device | None = None) -> list[Approval]:
    """The user's pending approvals, newest first; with ``device``, only those
    aimed at it."""
    ids = idp().store.redis.smembers(idp().store.key("approvals-user", str(user_id)))
    found = []
    for raw in ids:
        approval = load(raw.decode() if isinstance(raw, bytes) else raw)
        if approval is None or approval.status != PENDING or approval.expired(now):
            continue
        if device is None or approval.aimed_at(device):
            found.append(approval)
    return sorted(found, key=lambda a: a.created_at, reverse=True)


def for_device(approval_id: str, device: Device, now: datetime) -> Approval:
    approval = load(approval_id)
    # Another user's approval, or one aimed at other devices (this one was
    # enrolled after it was made): not confirmed to exist.
    if approval is None or not approval.aimed_at(device):
        raise ApprovalNotFound()
    return approval


def cancel_unanswerable(user_id: int, *, now: datetime, reason: str) -> list[str]:
    """Cancel the user's pending approvals that no active device can answer
    any more (every device they were aimed at is revoked); their waiting
    browsers are woken as by an answer. The ids cancelled."""
    active = {d.id for d in active_devices(user_id)}
    cancelled = []
    for approval in pending_for(user_id, now):
        aimed = set(approval.device_ids) if approval.device_ids is not None else active
        if not aimed & active:
            cancel(approval.id, reason=reason)
            cancelled.append(approval.id)
    return cancelled


def on_device_revoked(sender: object, *, device: Device, now: datetime, **extra: Any) -> None:
    """Receiver of ``idp.devices.service.device_revoked`` (connected in create_app):
    DESIGN §4, approvals aimed at a deleted device are cancelled."""
    cancel_unanswerable(device.user_id, now=now, reason="device_deleted")


def answer(
    *,
    approval_id: str,
    device: Device,
    decision: Any,
    code: Any,
    fraud: Any,
    assertion: Any,
    now: datetime,
) -> VerifiedAnswer:
    """Verify a device's answer and consume the approval, once.

    Rules, each with its own error:
    - the approval exists and belongs to the device's user (else not found);
    - it is still open and not expired;
    - the user is not locked out by wrong numbers;
    - the assertion verifies against this device's credential, with user
      verification, over the challenge for exactly this approval, decision,
      number and context (idp.webauthn.approval_challenge);
    - the signature counter moves forward (a replayed assertion does not);
    - for approve, the number matches the one shown in the browser
      (constant-time), else it counts toward the lockout;
    - only one answer wins (GETDEL of approval-open).
    """
    settings = idp().settings
    if decision not in ("approve", "deny") or not isinstance(code, str) or len(code) > 16:
        raise InvalidAnswer()
    if not isinstance(fraud, bool) or (fraud and decision != "deny"):
        raise InvalidAnswer()
    approval = for_device(approval_id, device, now)
    if approval.status in (CANCELLED, EXPIRED):
        raise ApprovalExpired()
    if approval.status != PENDING:
        raise ApprovalAlreadyAnswered()
    if approval.expired(now) or not idp().store.exists("approval-open", approval.id):
        raise ApprovalExpired()
    wrong_codes, _ = _counters()
    if decision == "approve" and wrong_codes.blocked(str(device.user_id)):
        raise TooManyWrongCodes(retry_after=wrong_codes.retry_after(str(device.user_id)))

    challenge = approval_challenge(
        approval_id=approval.id,
        decision=decision,
        code=code if decision == "approve" else "",
        context=approval.context,
    )
    old_count = device.sign_count
    verified = verify_assertion(
        response=assertion,
        expected_challenge=challenge,
        expected_origin=settings.issuer,
        rp_id=settings.rp_id,
        credential_public_key=device.public_key,
        current_sign_count=old_count,
        # The device that holds this token answers, not another one.
        expected_credential_id=device.credential_id,
        expected_user_handle=device.user.sub.encode(),
    )
    if not record_use(
        device, old_sign_count=old_count, new_sign_count=verified.new_sign_count, now=now
    ):
        # Another answer with the same counter was accepted concurrently.
        raise ApprovalAlreadyAnswered()

    if decision == "approve":
        expected = approval.code_digest
        if not hmac.compare_digest(_code_digest(approval.id, code.strip()), expected):
            failures = wrong_codes.record_failure(str(device.user_id))
            audit.record("approval_wrong_code", user_id=device.user_id, approval=approval.id,
                         device=device.id, failures=failures)  # fmt: skip
            if wrong_codes.blocked(str(device.user_id)):
                cancel(approval.id, reason="too many wrong numbers")
                raise TooManyWrongCodes(retry_after=wrong_codes.retry_after(str(device.user_id)))
            raise WrongMatchCode()

    # Single use: exactly one answer takes the approval.
    if idp().store.consume("approval-open", approval.id) is None:
        raise ApprovalAlreadyAnswered()
    approval.status = APPROVED if decision == "approve" else DENIED
    approval.device_id = device.id
    approval.device_amr = device.amr
    save(approval)
    if decision == "approve":
        wrong_codes.reset(str(device.user_id))
        idp().store.put("approval-grant", approval.id, 1, ttl=settings.login_transaction_lifetime)
    _publish(approval)
    audit.record(
        "approval_approved" if decision == "approve" else "approval_denied",
        user_id=device.user_id, client_id=approval.client_id, approval=approval.id,
        device=device.id,
    )  # fmt: skip
    if fraud:
        report_fraud(approval, device)
    return VerifiedAnswer(
        approval=approval,
        decision=decision,
        fraud=fraud,
        sign_count_regressed=verified.sign_count_regressed,
    )


def report_fraud(approval: Approval, device: Device) -> None:
    settings = idp().settings
    idp().store.put("push-block", str(approval.user_id), 1, ttl=settings.fraud_block_duration)
    audit.record("approval_fraud_reported", user_id=approval.user_id,
                 client_id=approval.client_id, approval=approval.id, device=device.id,
                 ip=approval.ip)  # fmt: skip
    if settings.fraud_report_email:
        from .messages import send_fraud_notice

        send_fraud_notice(device.user, approval)


def take_grant(approval: Approval) -> bool:
    """The browser's single use of an approved approval."""
    return idp().store.consume("approval-grant", approval.id) is not None


def wait(approval_id: str, *, timeout: float) -> Iterator[Approval | None]:
    """Yield the approval now and whenever it may have changed (an answer was
    published, or every 15 s as a heartbeat) until ``timeout``; the caller
    stops once it is final or expired. Listens before the first read, so no
    answer is missed between the two."""
    with idp().store.fanout.listen(channel(approval_id)) as waiter:
        deadline = time.monotonic() + timeout
        while True:
            yield load(approval_id)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            waiter.wait(min(15.0, remaining))
