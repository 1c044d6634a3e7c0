"""Client registrations read by the protocol endpoints, kept in each process.

The token endpoint looks its client up on every request; registrations change
rarely (the admin pages and API, ``idp clients``, dynamic registration). Each
process keeps the registrations it read, each with the **stamp** the
registration had in Redis when it was read, and uses a kept one only while
Redis still holds that stamp: every lookup reads the stamp (one ``GET``),
so there is no message to wait for and no moment in which another process
may use what it kept after a change was answered.

A transaction that changes a ``Client`` row (insert, update, delete):

1. before its commit, sets the stamps of those clients to ``pending`` (with a
   short lifetime): from then on no process uses what it kept, or keeps what
   it reads, for them. If Redis cannot be reached, the commit fails and
   nothing changed (an error answer, or an error from the command);
2. commits;
3. after the commit, sets new random stamps: processes read the registration
   again once, then keep it. If Redis fails at this moment the change stands,
   the stamps stay ``pending`` until they expire, and a missing stamp is made
   anew (random), which again matches nothing kept.

Stamps are random, not counters: a Redis that lost its keys (flushed,
restarted without persistence, evicted) would start a counter again at a
value a process may still hold. A Redis restored from an older snapshot may
bring an old stamp back (as it brings back revoked access tokens): restart
the instances after restoring one.

What is kept is a detached copy read in a session of its own, so it never
holds a request's uncommitted changes. The protocol code only reads it; the
code that changes a registration loads its own (``idp.oidc.clients.get_client``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any, cast

import redis
from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..extensions import db
from ..state import IDP
from ..store import Store
from ..store.kinds import Kind
from .models import Client

log = logging.getLogger(__name__)

# A registration's stamp: random hex, or PENDING while a change commits.
STAMPS = Kind("client-stamp", str, ttl=lambda s: 24 * 3600)
PENDING = b"pending"
# Long enough for any commit; a stamp left pending (the commit rolled back,
# or Redis failed after it) only costs a database read per lookup meanwhile.
PENDING_TTL = 300
MAX_ENTRIES = 10_000

# Session.info key: the client_ids a transaction changed.
_CHANGED = "idp.changed_clients"


class ClientCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._entries: dict[str, tuple[bytes, Client]] = {}

    def get(self, client_id: str, load: Callable[[str], Client | None]) -> Client | None:
        """The registration as last committed: kept, if its stamp is still
        the one in Redis, else ``load``-ed (and kept with that stamp)."""
        key = self._store.key(STAMPS.namespace, client_id)
        stamp = cast(bytes | None, self._store.redis.get(key))
        if stamp is None:
            stamp = self._new_stamp(key)
        if stamp is None or stamp == PENDING:
            return load(client_id)
        found = self._entries.get(client_id)
        if found is not None and found[0] == stamp:
            return found[1]
        # Read after the stamp: a change committed before this read has set
        # its stamp (pending) before, so this stamp cannot be current after
        # it unless the change is in what is read.
        client = load(client_id)
        if client is not None:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[client_id] = (stamp, client)
        return client

    def forget(self) -> None:
        self._entries.clear()

    def _new_stamp(self, key: str) -> bytes | None:
        stamp = secrets.token_hex(16).encode()
        if self._store.redis.set(key, stamp, nx=True, ex=STAMPS.lifetime()):
            return stamp
        return cast(bytes | None, self._store.redis.get(key))

    def changing(self, client_ids: set[str]) -> None:
        """Before the commit of a change to these clients (raises if Redis fails)."""
        pipe = self._store.redis.pipeline(transaction=False)
        for client_id in sorted(client_ids):
            pipe.set(self._store.key(STAMPS.namespace, client_id), PENDING, ex=PENDING_TTL)
        pipe.execute()

    def changed(self, client_ids: set[str]) -> None:
        """After the commit: new stamps (a failure is logged; the pending
        stamps expire and are made anew)."""
        pipe = self._store.redis.pipeline(transaction=False)
        ttl = STAMPS.lifetime()
        for client_id in sorted(client_ids):
            key = self._store.key(STAMPS.namespace, client_id)
            pipe.set(key, secrets.token_hex(16).encode(), ex=ttl)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("client stamps left pending after a change: %s", type(exc).__name__)


def _current_cache() -> ClientCache | None:
    if not has_app_context():
        return None
    state = current_app.extensions.get(IDP)
    return None if state is None else state.clients


@event.listens_for(Client, "after_insert")
@event.listens_for(Client, "after_update")
@event.listens_for(Client, "after_delete")
def _flushed(mapper: Any, connection: Any, target: Client) -> None:
    session = Session.object_session(target)
    if session is not None:
        session.info.setdefault(_CHANGED, set()).add(target.client_id)


@event.listens_for(db.session, "before_commit")
def _before_commit(session: Any) -> None:
    if session.in_nested_transaction():
        return
    # What commit() would flush next: its changes must be known now.
    session.flush()
    changed = session.info.get(_CHANGED)
    cache = _current_cache()
    if changed and cache is not None:
        cache.changing(changed)


@event.listens_for(db.session, "after_commit")
def _after_commit(session: Any) -> None:
    if session.in_nested_transaction():
        return
    changed = session.info.pop(_CHANGED, None)
    cache = _current_cache()
    if changed and cache is not None:
        cache.changed(changed)


@event.listens_for(db.session, "after_rollback")
def _after_rollback(session: Any) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_CHANGED, None)
