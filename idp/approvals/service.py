"""The approval lifecycle: the second factor confirmed on the user's device.

An approval lives in Redis. It is created after the first factor for one
login transaction (one live approval per login), pushed to the user's devices,
answered once by a device with a WebAuthn assertion over the canonical
challenge (DESIGN §3.6), and the answer wakes the waiting browser through
Redis pub/sub, whichever instance it is connected to.

Where it is kept: ``idp.approvals.store``; what it is: ``idp.approvals.model``.

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
from datetime import datetime
from typing import Any

from .. import audit
from ..accounts.models import User
from ..devices.models import Device
from ..devices.push import push_to_devices
from ..devices.service import active_devices, record_use
from ..extensions import after_commit, db
from ..notify import DeliveryError
from ..state import idp
from ..store.ratelimit import (
    Limit,
    LimitReached,
    give_back_later,
    reserve,
    reset,
    retry_after,
)
from ..tokens import new_token
from ..webauthn import CredentialJSON, Decision, approval_challenge, verify_assertion
from .messages import send_fraud_notice
from .model import (
    APPROVED,
    CANCELLED,
    DENIED,
    EXPIRED,
    FINAL,
    PENDING,
    Approval,
    ApprovalAlreadyAnswered,
    ApprovalError,
    ApprovalExpired,
    ApprovalNotFound,
    InvalidAnswer,
    PushesBlocked,
    StartedApproval,
    TooManyApprovals,
    TooManyWrongCodes,
    VerifiedAnswer,
    WrongMatchCode,
    iso,
)
from .store import (
    GRANTS,
    OPEN,
    PUSH_BLOCKS,
    close,
    free_place,
    live_for,
    load,
    open_approval,
    pending_for,
    user_channel,
    wait,
)

__all__ = [
    "APPROVED", "CANCELLED", "DENIED", "EXPIRED", "FINAL", "PENDING", "Approval",
    "ApprovalAlreadyAnswered", "ApprovalError", "ApprovalExpired", "ApprovalNotFound",
    "InvalidAnswer", "PushesBlocked", "StartedApproval", "TooManyApprovals",
    "TooManyWrongCodes", "VerifiedAnswer", "WrongMatchCode", "answer", "cancel",
    "cancel_unanswerable", "for_device", "limits", "live_for", "load", "on_device_revoked",
    "pending_for", "release", "start", "take_grant", "user_channel", "wait", "withdraw",
]  # fmt: skip

log = logging.getLogger(__name__)


def _code_digest(approval_id: str, code: str) -> str:
    return idp().digester.digest(code, purpose=f"match-code:{approval_id}")


def limits() -> tuple[Limit, Limit, Limit]:
    """Per user: wrong numbers; approvals that may wear the user down (left
    unanswered, denied); approvals pushed and not approved (withdrawn ones too)."""
    s = idp().settings
    return (
        # NIST SP 800-63B-4 §3.2.2: failed attempts count per user, across
        # approvals: a new approval does not reset them.
        Limit("approval-code", s.approval_code_failures, s.approval_window),
        Limit("approval-push", s.approval_push_limit, s.approval_window),
        Limit("approval-request", s.approval_request_limit, s.approval_window),
    )


def _give_back(approval: Approval, *limits: Limit) -> None:
    """Uncount ``approval`` from ``limits`` (it was approved, or withdrawn).
    Called by the one caller that closed it, so once per approval."""
    counted = approval.counted or {}
    for limit in limits:
        window_end = counted.get(limit.name)
        if window_end is not None:
            give_back_later(idp().store, limit, str(approval.user_id), window_end=window_end)


def release(tx_id: str, *, reason: str) -> None:
    """Cancel the login transaction's live approval and free its place, so
    that the waiting page starts a new one (unless a newer one took the
    place meanwhile: that one stays)."""
    approval = live_for(tx_id)
    if approval is None:
        return
    cancel(approval.id, reason=reason)
    free_place(tx_id, approval.id)


def withdraw(tx_id: str, *, reason: str) -> None:
    """Cancel the login transaction's live approval (the user chose another
    way, or cancelled the sign-in): it no longer counts toward the push limit.
    Only a passkey confirmation (``reason="passkey"``: the user proved who
    they are) uncounts it from the request limit too: a browser with the
    password alone that withdraws every request it makes still runs into it."""
    approval = live_for(tx_id)
    if approval is None or not cancel(approval.id, reason=reason):
        return
    _, pushes, requests = limits()
    if reason == "passkey":
        _give_back(approval, pushes, requests)
    else:
        _give_back(approval, pushes)


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
    if PUSH_BLOCKS.exists(subject):
        audit.record("approval_blocked", user_id=user.id, client_id=client_id)
        raise PushesBlocked(retry_after=max(1, PUSH_BLOCKS.seconds_left(subject)))
    wrong_codes, pushes, requests = limits()
    blocked_for = retry_after(store, wrong_codes, subject)
    if blocked_for is not None:
        raise TooManyWrongCodes(retry_after=blocked_for)
    try:
        # Counted before it is made: concurrent requests cannot get past it.
        # Given back later if it is approved or withdrawn (_give_back).
        attempt = reserve(store, (pushes, subject), (requests, subject))
    except LimitReached as exc:
        audit.record("approval_push_limit", user_id=user.id, client_id=client_id,
                     limit=exc.limit.name)  # fmt: skip
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
            created_at=iso(now),
            expires_at=int(now.timestamp()) + settings.approval_lifetime,
            code_digest=_code_digest(approval_id, code),
            counted={limit.name: attempt.window_end(limit) for limit in (pushes, requests)},
        )
        devices = active_devices(user.id)
        approval.device_ids = [d.id for d in devices]
        replaced = open_approval(approval, tx_id=tx_id)
        if replaced:
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


def cancel(approval_id: str, *, reason: str) -> bool:
    """Close a pending approval as cancelled (its waiting page is woken);
    True if this call closed it."""
    approval = load(approval_id)
    if approval is None or approval.status != PENDING:
        return False
    approval.status = CANCELLED
    if not close(approval):
        return False
    audit.record("approval_cancelled", user_id=approval.user_id, approval=approval_id,
                 reason=reason)  # fmt: skip
    return True


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
    decision: Decision,
    code: str,
    fraud: bool,
    assertion: CredentialJSON | None,
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
    if len(code) > 16 or (fraud and decision != "deny"):
        raise InvalidAnswer()
    approval = for_device(approval_id, device, now)
    if approval.status in (CANCELLED, EXPIRED):
        raise ApprovalExpired()
    if approval.status != PENDING:
        raise ApprovalAlreadyAnswered()
    store = idp().store
    if approval.expired(now) or not OPEN.exists(approval.id):
        raise ApprovalExpired()
    wrong_codes, pushes, requests = limits()
    subject = str(device.user_id)
    if decision == "approve":
        blocked_for = retry_after(store, wrong_codes, subject)
        if blocked_for is not None:
            raise TooManyWrongCodes(retry_after=blocked_for)

    challenge = approval_challenge(
        approval_id=approval.id,
        decision=decision,
        code=code if decision == "approve" else "",
        context=approval.context,
    )
    old_count = device.sign_count
    verified = verify_assertion(
        response=assertion if assertion is not None else {},
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
        PUSH_BLOCKS.put(subject, 1)
        audit.record("approval_fraud_reported", user_id=approval.user_id,
                     client_id=approval.client_id, approval=approval.id, device=device.id,
                     ip=approval.ip)  # fmt: skip
    db.session.flush()
    # Single use: exactly one answer closes the approval (and wakes the page).
    grant_ttl = settings.login_transaction_lifetime if decision == "approve" else None
    if not close(approval, grant_ttl=grant_ttl):
        db.session.rollback()
        raise ApprovalAlreadyAnswered()
    if decision == "approve":
        reset(store, wrong_codes, subject)
        # Answered by the user: no push bombing (a denial stays counted).
        _give_back(approval, pushes, requests)
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
    wrong_codes, _, _ = limits()
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
    try:
        send_fraud_notice(device.user, approval)
    except DeliveryError:
        log.warning("the fraud report notice for user %s was not mailed", approval.user_id)


def take_grant(approval: Approval) -> bool:
    """The browser's single use of an approved approval."""
    return GRANTS.consume(approval.id) is not None
