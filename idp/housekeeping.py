"""Housekeeping: rows that serve nothing any more are deleted.

Every sign-in adds a login session, every code redeemed a token family, every
refresh a refresh token, every event an audit row; nothing took them away, so
the tables grew for good. Once a row has served nothing for ``purge_after``
seconds it goes:

- login sessions that ended or expired (with the list of clients they signed
  in to). A live session is never touched: "ended or expired" is checked
  again by the DELETE itself.
- refresh tokens that expired, consumed, revoked or never used (a replay of
  an expired token is refused as unknown instead of as expired: either way
  it gets nothing);
- token families without a refresh token whose last token, an access token of
  at most ``MAX_ACCESS_TOKEN_LIFETIME``, expired; except each user's newest
  family of each app, which says when the app was last used (connected apps);
- initial access tokens that expired;
- audit events older than ``audit_retention_days`` (0: kept for good).

A batch of ``BATCH`` rows at a time, each batch its own transaction: SQLite's
one write lock, and PostgreSQL's row locks, are held for a batch, never for the
whole purge, so requests keep being answered meanwhile. Running twice at once
(two instances) deletes nothing twice: a row is deleted by one of them.

``idp purge`` runs it; ``idp serve`` runs it every ``purge_interval`` seconds
(``start_purge_timer``), on one instance at a time (a lock in Redis).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import ColumnElement, and_, delete, exists, or_, select
from sqlalchemy.orm import aliased

from . import audit
from .audit import AuditEvent
from .auth.models import LoginSession
from .config import Settings
from .extensions import commit, db, rollback, utcnow
from .oidc.models import InitialAccessToken, RefreshToken, TokenFamily
from .state import idp

log = logging.getLogger(__name__)

BATCH = 500
# The longest an access token can live (``access_token_lifetime``, also per
# client): a family whose last token was issued before that has none alive.
MAX_ACCESS_TOKEN_LIFETIME = timedelta(days=1)
LOCK = "purge"


@dataclass(frozen=True)
class Purged:
    """How many rows of each kind one purge deleted."""

    login_sessions: int = 0
    refresh_tokens: int = 0
    token_families: int = 0
    initial_access_tokens: int = 0
    audit_events: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def purge(
    settings: Settings, *, actor: str, now: datetime | None = None, batch: int = BATCH
) -> Purged:
    """Delete what served nothing for ``settings.purge_after`` seconds (see
    the module's text), on the word of ``actor`` (``cli``, ``server``): an
    audit event ``purged`` with the counts when anything was deleted.
    Commits after each batch; in an app context."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.purge_after)
    counts: dict[str, int] = {
        # Refresh tokens before families: a family goes once it has none.
        "refresh_tokens": _in_batches(RefreshToken.id, RefreshToken.expires_at < cutoff, batch),
        "login_sessions": _in_batches(
            LoginSession.id,
            or_(LoginSession.ended_at < cutoff, LoginSession.expires_at < cutoff),
            batch,
        ),
        "token_families": _in_batches(
            TokenFamily.id, _dead_families(cutoff - MAX_ACCESS_TOKEN_LIFETIME), batch
        ),
        # (A used-up one stays until then too: the administration lists it.)
        "initial_access_tokens": _in_batches(
            InitialAccessToken.id, InitialAccessToken.expires_at < cutoff, batch
        ),
    }
    if settings.audit_retention_days:
        kept_from = now - timedelta(days=settings.audit_retention_days)
        counts["audit_events"] = _in_batches(AuditEvent.id, AuditEvent.at < kept_from, batch)
    purged = Purged(**counts)
    if purged.total:
        audit.record("purged", actor=actor, deleted=purged.as_dict())
        commit()
    return purged


def _dead_families(last_used_before: datetime) -> ColumnElement[bool]:
    newer = aliased(TokenFamily)
    return and_(
        # (Created before it was last used: the index to find them by.)
        TokenFamily.created_at < last_used_before,
        TokenFamily.last_used_at < last_used_before,
        ~exists().where(RefreshToken.family_id == TokenFamily.id),
        exists().where(
            newer.user_id == TokenFamily.user_id,
            newer.client_id == TokenFamily.client_id,
            newer.last_used_at > TokenFamily.last_used_at,
        ),
    )


def _in_batches(key: Any, condition: ColumnElement[bool], batch: int) -> int:
    """Delete the rows of ``key``'s table that meet ``condition``, ``batch``
    at a time, each batch committed; how many were deleted."""
    table = key.class_
    deleted = 0
    while True:
        try:
            ids = list(db.session.scalars(select(key).where(condition).limit(batch)))
            if not ids:
                commit()
                return deleted
            # The condition again: a row changed since it was read stays.
            result = db.session.execute(
                delete(table).where(key.in_(ids), condition),
                execution_options={"synchronize_session": False},
            )
            commit()
        except Exception:
            rollback()
            raise
        deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]


def start_purge_timer(app: Flask) -> None:
    """``idp serve``: a thread in each worker (it ends with the worker) that
    purges every ``purge_interval`` seconds (each wait drawn between a half
    and the whole interval, so the workers do not all try at once), when this
    worker takes the lock first (``run_if_due``): one purge per interval
    across all workers and instances. A purge that fails is logged; the next
    interval tries again. Nothing with ``purge_interval`` 0."""
    interval = app.extensions["idp"].settings.purge_interval
    if interval:
        thread = threading.Thread(
            target=_purge_every, args=(app, interval), name="purge", daemon=True
        )
        thread.start()


def _purge_every(app: Flask, interval: int) -> None:
    while True:
        time.sleep(random.uniform(interval / 2, interval))  # noqa: S311 (jitter, not a secret)
        with app.app_context():
            try:
                run_if_due()
            except Exception:
                log.exception("the purge failed; it runs again in the next interval")


def run_if_due() -> Purged | None:
    """Purge, unless another worker or instance did within the last
    ``purge_interval`` seconds (None then). In an app context."""
    state = idp()
    interval = state.settings.purge_interval or 3600
    if not state.store.add(LOCK, "lock", utcnow().isoformat(), ttl=interval):
        return None
    return purge(state.settings, actor="server")
