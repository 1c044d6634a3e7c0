"""Client registrations read by the protocol endpoints, kept in each process.

The token endpoint looks its client up on every request; the registrations
change rarely (an administrator, the CLI, dynamic registration). Each process
keeps what it read, and forgets everything when any registration changes:
a change to a ``Client`` row, once committed, is published on one Redis
channel, and a watcher thread in every process (idp.store.fanout) clears its
cache when a message arrives, and also whenever its subscription was
interrupted, since a message may have been missed meanwhile. While the watcher
is not subscribed, nothing is cached: every lookup reads the database.

A lookup that began before a change clears the cache does not store what it
read (the generation moved on), so a stale registration is never kept. Cached
rows are detached from any session; the protocol code only reads them, and
the code that changes a registration loads its own (idp.oidc.clients.get_client).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import redis
from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..state import IDP
from ..store import Store
from .models import Client

log = logging.getLogger(__name__)

CHANNEL = ("clients", "changed")
_CHANGED = "idp.changed_clients"
MAX_ENTRIES = 10_000


class ClientCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._entries: dict[str, Client] = {}
        self._generation = 0
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None
        self._closed = threading.Event()

    def get(self, client_id: str, load: Callable[[str], Client | None]) -> Client | None:
        found = self._entries.get(client_id)
        if found is not None:
            return found
        self._ensure_watcher()
        generation = self._generation
        client = load(client_id)
        if client is None or not self._watching.is_set():
            return client
        with self._lock:
            if generation == self._generation and len(self._entries) < MAX_ENTRIES:
                self._entries[client_id] = client
        return client

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def close(self) -> None:
        self._closed.set()
        self._watching.clear()
        self.forget()

    def publish_change(self) -> None:
        """After a committed change: every process (this one at once) forgets."""
        self.forget()
        try:
            self._store.redis.publish(self._store.channel(*CHANNEL), "1")
        except redis.RedisError as exc:
            # The other processes' watchers cannot be reached either; they
            # forget when their subscription comes back.
            log.warning("client change not published: %s", type(exc).__name__)

    def _ensure_watcher(self) -> None:
        if self._closed.is_set() or (self._watcher is not None and self._watcher.is_alive()):
            return
        with self._lock:
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(
                    target=self._watch, name="client-cache", daemon=True
                )
                self._watcher.start()

    def _watch(self) -> None:
        channel = self._store.channel(*CHANNEL)
        while not (self._closed.is_set() or self._store.closed):
            try:
                with self._store.fanout.listen(channel) as waiter:
                    self.forget()
                    self._watching.set()
                    while not self._closed.is_set():
                        if waiter.wait(1.0):
                            # A change, or the subscription was interrupted
                            # (the fanout wakes every waiter then).
                            self.forget()
            except redis.RedisError:
                pass
            self._watching.clear()
            self.forget()
            self._closed.wait(1.0)


def _current_cache() -> ClientCache | None:
    if not has_app_context():
        return None
    state = current_app.extensions.get(IDP)
    return None if state is None else state.clients


@event.listens_for(Client, "after_update")
@event.listens_for(Client, "after_delete")
def _changed(mapper: Any, connection: Any, target: Client) -> None:
    session = Session.object_session(target)
    if session is not None:
        session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        cache = _current_cache()
        if cache is not None:
            cache.publish_change()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_CHANGED, None)
