"""SQLite: the writers of one process wait their turn on a lock of their own.

SQLite lets one transaction write at a time. A writer that finds the database
locked is put to sleep by SQLite's busy handler, which tries again after 1, 2,
5, 10 ... up to 100 ms, so a lock that is free again waits for the next try:
with eight requests writing at once, most were served in about 10 ms and the
slowest in 0.6-0.8 s (refresh and SSO in `make bench`, docs/performance.md).

``WriterQueueConnection`` (the ``sqlite3`` connection the engine makes, see
``engine_options``) takes a lock shared by the process's connections to the
same database file before the first write of a transaction (the statement on
which ``sqlite3`` begins one) and gives it back when the transaction ends, so
the next writer of the process gets it at once; the busy handler is left to
settle between processes, with one writer of each. Nothing else changes: a
transaction that writes holds SQLite's lock from its first write to its end
either way, and a writer that waits longer than the busy timeout fails with
SQLite's own "database is locked", as it did.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

from sqlalchemy.engine import make_url

# What SQLite waits for the lock (PRAGMA busy_timeout, idp.app), in seconds.
BUSY_TIMEOUT = 5.0

# The statements on which sqlite3 begins a transaction (its legacy
# transaction control, which SQLAlchemy's pysqlite dialect uses).
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")

_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def _lock_for(database: str) -> threading.Lock:
    key = os.path.realpath(database)
    with _locks_lock:
        return _locks.setdefault(key, threading.Lock())


def _forget_locks() -> None:
    # A forked worker starts with its own locks (none held).
    _locks.clear()


os.register_at_fork(after_in_child=_forget_locks)


def engine_options(database_url: str) -> dict[str, Any]:
    """The engine options that make SQLite's connections queue their
    writers (none for another database, or for one in memory, which only
    its own connection sees)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return {}
    return {"connect_args": {"factory": WriterQueueConnection}}


class _Cursor(sqlite3.Cursor):
    connection: WriterQueueConnection

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        self.connection.before_statement(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> _Cursor:
        self.connection.before_statement(sql)
        return super().executemany(sql, seq_of_parameters)


class WriterQueueConnection(sqlite3.Connection):
    """A ``sqlite3`` connection whose writes wait on the process's lock for
    its database file (statements go through ``cursor()``, as SQLAlchemy's
    do)."""

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._writer_lock = _lock_for(database)
        self._writing = False

    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)

    def before_statement(self, sql: str) -> None:
        if self._writing or sql.lstrip()[:6].upper() not in _WRITES:
            return
        if not self._writer_lock.acquire(timeout=BUSY_TIMEOUT):
            raise sqlite3.OperationalError("database is locked")
        self._writing = True

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._end_of_transaction()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._end_of_transaction()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()

    def _end_of_transaction(self) -> None:
        # A commit that failed leaves the transaction open (its rollback
        # follows): the lock goes with the transaction, not with the call.
        try:
            open_transaction = self.in_transaction
        except sqlite3.ProgrammingError:  # closed
            open_transaction = False
        if not open_transaction:
            self._release()

    def _release(self) -> None:
        if self._writing:
            self._writing = False
            self._writer_lock.release()
