"""The approval lifecycle: the second factor confirmed on the user's device.

An approval lives in Redis. It is created after the first factor for one
login transaction (one live approval per login), pushed to the user's devices,
answered once by a device with a WebAuthn assertion over the canonical
challenge (DESIGN §3.6), and the answer wakes the waiting browser through
Redis pub/sub, whichever instance it is connected to.

Keys (all with TTLs):
  approval:<id>         the record (kept a while after the answer for the page)
  approval-open:<id>    present while it may be answered; deleted by the one
                        answer or cancellation that wins (the same script
                        writes the outcome, so none is half-written)
  approval-grant:<id>   set on approval; consumed once by the browser to sign in
  approval-tx:<tx>      the live approval of one login transaction: a new one
                        takes the place (and the old one is cancelled)
  approvals-user:<user> the user's approvals, for the device's list
  push-block:<user>     set by "deny and report fraud"

Order of writes: an answer's SQL changes (the device's signature counter,
the audit event) are flushed first, then the one atomic Redis step closes the
approval, then the request's transaction commits; if Redis fails, it rolls
back and nothing has changed (the device may answer again).
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

from .. import audit
from ..accounts.models import User
from ..devices.models import Device
from ..devices.push import push_to_devices
from ..devices.service import active_devices, record_use
from ..errors import IdpError, InvalidRequest, Throttled
from ..extensions import after_commit, db
from ..notify import DeliveryError
from ..state import idp
from ..store.ratelimit import Limit, LimitReached, reserve, reset, retry_after
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


class TooManyWrongCodes(Throttled, ApprovalError):
    message = _l("Too many wrong numbers. Please wait before trying again.")


class PushesBlocked(Throttled, ApprovalError):
    error = "approvals_blocked"
    message = _l(
        "Sign-in confirmations for this account are paused for a while after a report "
        "of a sign-in attempt that was not made by you."
    )


class TooManyApprovals(Throttled, ApprovalError):
    error = "too_many_approvals"
    message = _l("Too many sign-in confirmations were requested. Please wait a few minutes.")


class InvalidAnswer(InvalidRequest, ApprovalError):
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


def _limits() -> tuple[Limit, Limit]:
    s = idp().settings
    return (
        # NIST SP 800-63B-4 §3.2.2: failed attempts count per user, across
        # approvals: a new approval does not reset them.
        Limit("approval-code", s.approval_code_failures, s.approval_window),
        Limit("approval-push", s.approval_push_limit, s.approval_window),
    )


# Opens an approval: its record, its open marker, the user's index and, for a
# login, the transaction's live approval, whose previous value is returned.
# KEYS: record, open, user index[, tx slot]
# ARGV: record JSON, record TTL, open TTL, approval id, tx slot TTL
_OPEN = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[3]))
redis.call('SADD', KEYS[3], ARGV[4])
if redis.call('TTL', KEYS[3]) < tonumber(ARGV[3]) then
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3]))
end
if #KEYS >= 4 then
  local previous = redis.call('GET', KEYS[4])
  redis.call('SET', KEYS[4], ARGV[4], 'EX', tonumber(ARGV[5]))
  return previous
end
return false
"""

# Frees a transaction's place if it still holds the given approval.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
"""

# Closes an approval once: only the caller that removes the open marker
# writes the outcome (and, on approval, the browser's grant) and wakes the
# waiting page. KEYS: open, record, grant; ARGV: record JSON, record TTL,
# channel, message, grant TTL ("" for none). Returns 1 for the winner, else 0.
_CLOSE = """
if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', tonumber(ARGV[2]))
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[3], '1', 'EX', tonumber(ARGV[5]))
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""


def channel(approval_id: str) -> str:
    return idp().store.channel("approval", approval_id)


def user_channel(user_id: int) -> str:
    return idp().store.channel("user-approvals", str(user_id))


def _record_ttl(approval: Approval) -> int:
    return max(1, approval.expires_at - int(datetime.now(UTC).timestamp())) + KEEP_AFTER_EXPIRY


def _close(approval: Approval, *, grant_ttl: int | None = None) -> bool:
    """Write the approval's final status, once: True for the one caller that
    closed it, False if it was closed already (answered, cancelled, expired)."""
    store = idp().store
    closed = store.script(_CLOSE)(
        keys=[
            store.key("approval-open", approval.id),
            store.key("approval", approval.id),
            store.key("approval-grant", approval.id),
        ],
        args=[
            json.dumps(asdict(approval)),
            _record_ttl(approval),
            channel(approval.id),
            json.dumps({"id": approval.id, "status": approval.status}),
            grant_ttl or "",
        ],
    )
    return bool(closed)


def load(approval_id: str | None) -> Approval | None:
    if not approval_id or not isinstance(approval_id, str) or len(approval_id) > 64:
        return None
    data = idp().store.get("approval", approval_id)
    return Approval(**data) if data else None


def live_for(tx_id: str) -> Approval | None:
    """The live approval of a login transaction (the last one started)."""
    approval_id = idp().store.redis.get(idp().store.key("approval-tx", tx_id))
    return load(approval_id.decode() if isinstance(approval_id, bytes) else approval_id)


def release(tx_id: str, *, reason: str) -> None:
    """Cancel the login transaction's live approval and free its place, so
    that the waiting page starts a new one (unless a newer one took the
    place meanwhile: that one stays)."""
    approval = live_for(tx_id)
    if approval is None:
        return
    cancel(approval.id, reason=reason)
    store = idp().store
    store.script(_RELEASE)(keys=[store.key("approval-tx", tx_id)], args=[approval.id])


def withdraw(tx_id: str, *, reason: str) -> None:
    """Cancel the login transaction's live approval (the user chose another
    way, or cancelled the sign-in)."""
    approval = live_for(tx_id)
    if approval is not None:
        cancel(approval.id, reason=reason)


def start(
    *,
    user: User,
    client_id: str,
    client_name: str,
    tx_id: str | None,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
) -> StartedApproval:
    """A new approval for one login; the login's previous one is cancelled
    (one live approval per login transaction, however many requests race)."""
    settings = idp().settings
    store = idp().store
    subject = str(user.id)
    if store.exists("push-block", subject):
        audit.record("approval_blocked", user_id=user.id, client_id=client_id)
        raise PushesBlocked(retry_after=max(1, store.ttl("push-block", subject)))
    wrong_codes, pushes = _limits()
    wait = retry_after(store, wrong_codes, subject)
    if wait is not None:
        raise TooManyWrongCodes(retry_after=wait)
    try:
        # Counted before it is made: concurrent requests cannot get past it.
        attempt = reserve(store, (pushes, subject))
    except LimitReached as exc:
        audit.record("approval_push_limit", user_id=user.id, client_id=client_id)
        raise TooManyApprovals(retry_after=exc.retry_after) from None

    with attempt.given_back_on_error():
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
        keys = [
            store.key("approval", approval.id),
            store.key("approval-open", approval.id),
            store.key("approvals-user", subject),
        ]
        if tx_id is not None:
            keys.append(store.key("approval-tx", tx_id))
        previous = store.script(_OPEN)(
            keys=keys,
            args=[
                json.dumps(asdict(approval)),
                _record_ttl(approval),
                settings.approval_lifetime,
                approval.id,
                settings.login_transaction_lifetime,
            ],
        )
        if previous:
            replaced = previous.decode() if isinstance(previous, bytes) else str(previous)
            cancel(replaced, reason="replaced")
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
    """Close a pending approval as cancelled (its waiting page is woken)."""
    approval = load(approval_id)
    if approval is None or approval.status != PENDING:
        return
    approval.status = CANCELLED
    if _close(approval):
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
    browsers are woken as by an answer. Part of the caller's transaction (its
    audit events are not committed here). The ids cancelled."""
    active = {d.id for d in active_devices(user_id)}
    cancelled = []
    for approval in pending_for(user_id, now):
        aimed = set(approval.device_ids) if approval.device_ids is not None else active
        if not aimed & active:
            cancel(approval.id, reason=reason)
            cancelled.append(approval.id)
    return cancelled


def on_device_revoked(sender: object, *, device: Device, now: datetime, **extra: Any) -> None:
    """Receiver of ``idp.devices.service.device_revoking`` (connected in
    create_app): DESIGN §4, approvals aimed at a deleted device are cancelled,
    before the revocation commits (Redis down: nothing is revoked)."""
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
    store = idp().store
    if approval.expired(now) or not store.exists("approval-open", approval.id):
        raise ApprovalExpired()
    wrong_codes, _ = _limits()
    subject = str(device.user_id)
    if decision == "approve":
        wait = retry_after(store, wrong_codes, subject)
        if wait is not None:
            raise TooManyWrongCodes(retry_after=wait)

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
    # The new counter, not committed yet: a concurrent answer with the same
    # counter waits for this one and then finds it taken.
    if not record_use(
        device, old_sign_count=old_count, new_sign_count=verified.new_sign_count, now=now
    ):
        db.session.rollback()
        raise ApprovalAlreadyAnswered()

    if decision == "approve":
        _check_code(approval, device, code)

    approval.status = APPROVED if decision == "approve" else DENIED
    approval.device_id = device.id
    approval.device_amr = device.amr
    audit.record(
        "approval_approved" if decision == "approve" else "approval_denied",
        user_id=device.user_id, client_id=approval.client_id, approval=approval.id,
        device=device.id,
    )  # fmt: skip
    if fraud:
        # Paused before the denial is written: a report is never lost.
        store.put("push-block", subject, 1, ttl=settings.fraud_block_duration)
        audit.record("approval_fraud_reported", user_id=approval.user_id,
                     client_id=approval.client_id, approval=approval.id, device=device.id,
                     ip=approval.ip)  # fmt: skip
    db.session.flush()
    # Single use: exactly one answer closes the approval (and wakes the page).
    grant_ttl = settings.login_transaction_lifetime if decision == "approve" else None
    if not _close(approval, grant_ttl=grant_ttl):
        db.session.rollback()
        raise ApprovalAlreadyAnswered()
    if decision == "approve":
        reset(store, wrong_codes, subject)
    if fraud and settings.fraud_report_email:
        after_commit(lambda: _mail_fraud_notice(approval, device))
    return VerifiedAnswer(
        approval=approval,
        decision=decision,
        fraud=fraud,
        sign_count_regressed=verified.sign_count_regressed,
    )


def _check_code(approval: Approval, device: Device, code: str) -> None:
    """The number typed on the device is the one shown in the browser
    (constant-time). Each try is counted before the comparison, so however
    many answers arrive at once, at most ``approval_code_failures`` numbers
    are compared per window; a right number clears the count."""
    wrong_codes, _ = _limits()
    subject = str(device.user_id)
    try:
        attempt = reserve(idp().store, (wrong_codes, subject))
    except LimitReached as exc:
        # (A refusal: the request's changes, the used counter among them, stand.)
        raise TooManyWrongCodes(retry_after=exc.retry_after) from None
    with attempt.given_back_on_error(WrongMatchCode, TooManyWrongCodes):
        typed = _code_digest(approval.id, code.strip())
        if hmac.compare_digest(typed, approval.code_digest):
            return
        failures = attempt.number(wrong_codes)
        audit.record("approval_wrong_code", user_id=device.user_id, approval=approval.id,
                     device=device.id, failures=failures)  # fmt: skip
        if attempt.last_allowed(wrong_codes):
            cancel(approval.id, reason="too many wrong numbers")
            raise TooManyWrongCodes(retry_after=attempt.retry_after(wrong_codes))
        raise WrongMatchCode()


def _mail_fraud_notice(approval: Approval, device: Device) -> None:
    """Tell the user by e-mail (once the report is committed; a mail that
    cannot be sent does not undo it)."""
    from .messages import send_fraud_notice

    try:
        send_fraud_notice(device.user, approval)
    except DeliveryError:
        log.warning("the fraud report notice for user %s was not mailed", approval.user_id)


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
