"""Approvals in Redis: where each piece lives, and the atomic steps on them.

Kinds (all with TTLs, idp.store.kinds):
  approval:<id>         the record (kept a while after the answer for the page)
  approval-open:<id>    present while it may be answered; deleted by the one
                        answer or cancellation that wins (the same script
                        writes the outcome, so none is half-written)
  approval-grant:<id>   set on approval; consumed once by the browser to sign in
  approval-tx:<tx>      the live approval of one login transaction: a new one
                        takes the place (and the old one is cancelled)
  approvals-user:<user> the user's approvals, for the device's list
  push-block:<user>     set by "deny and report fraud"
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime

from ..devices.models import Device
from ..state import idp
from ..store.kinds import Kind
from .model import KEEP_AFTER_EXPIRY, PENDING, Approval

RECORDS = Kind("approval", Approval, ttl=lambda s: s.approval_lifetime + KEEP_AFTER_EXPIRY)
OPEN = Kind("approval-open", int, ttl=lambda s: s.approval_lifetime)
GRANTS = Kind("approval-grant", int, ttl=lambda s: s.login_transaction_lifetime)
# The id of a login transaction's live approval (a plain string, set by _OPEN).
LIVE = Kind("approval-tx", str, ttl=lambda s: s.login_transaction_lifetime)
# A set of approval ids per user.
USER_INDEX = Kind("approvals-user", str, ttl=lambda s: s.approval_lifetime)
PUSH_BLOCKS = Kind("push-block", int, ttl=lambda s: s.fraud_block_duration)

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


def record_ttl(approval: Approval) -> int:
    return max(1, approval.expires_at - int(datetime.now(UTC).timestamp())) + KEEP_AFTER_EXPIRY


def close(approval: Approval, *, grant_ttl: int | None = None) -> bool:
    """Write the approval's final status, once: True for the one caller that
    closed it, False if it was closed already (answered, cancelled, expired)."""
    store = idp().store
    closed = store.script(_CLOSE)(
        keys=[
            OPEN.key(approval.id),
            RECORDS.key(approval.id),
            GRANTS.key(approval.id),
        ],
        args=[
            json.dumps(asdict(approval)),
            record_ttl(approval),
            channel(approval.id),
            json.dumps({"id": approval.id, "status": approval.status}),
            grant_ttl or "",
        ],
    )
    return bool(closed)


def load(approval_id: str | None) -> Approval | None:
    if not approval_id or not isinstance(approval_id, str) or len(approval_id) > 64:
        return None
    return RECORDS.get(approval_id)


def live_for(tx_id: str) -> Approval | None:
    """The live approval of a login transaction (the last one started)."""
    approval_id = idp().store.redis.get(LIVE.key(tx_id))
    return load(approval_id.decode() if isinstance(approval_id, bytes) else approval_id)


def open_approval(approval: Approval, *, tx_id: str | None) -> str | None:
    """Store a new approval, open for answers, in the user's list, and (for a
    login) as the transaction's live one; the id of the one it replaced."""
    settings = idp().settings
    keys = [RECORDS.key(approval.id), OPEN.key(approval.id), USER_INDEX.key(str(approval.user_id))]
    if tx_id is not None:
        keys.append(LIVE.key(tx_id))
    previous = idp().store.script(_OPEN)(
        keys=keys,
        args=[
            json.dumps(asdict(approval)),
            record_ttl(approval),
            settings.approval_lifetime,
            approval.id,
            settings.login_transaction_lifetime,
        ],
    )
    if not previous:
        return None
    return previous.decode() if isinstance(previous, bytes) else str(previous)


def free_place(tx_id: str, approval_id: str) -> None:
    """Free the transaction's place if it still holds ``approval_id``."""
    idp().store.script(_RELEASE)(keys=[LIVE.key(tx_id)], args=[approval_id])


def pending_for(user_id: int, now: datetime, *, device: Device | None = None) -> list[Approval]:
    """The user's pending approvals, newest first; with ``device``, only those
    aimed at it."""
    ids = idp().store.redis.smembers(USER_INDEX.key(str(user_id)))
    found = []
    for raw in ids:
        approval = load(raw.decode() if isinstance(raw, bytes) else raw)
        if approval is None or approval.status != PENDING or approval.expired(now):
            continue
        if device is None or approval.aimed_at(device):
            found.append(approval)
    return sorted(found, key=lambda a: a.created_at, reverse=True)


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
            if remaining <= 0 or waiter.closed:
                return
            waiter.wait(min(15.0, remaining))
