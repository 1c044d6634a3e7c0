"""SQLite: the writers wait their turn on locks of their own, in the process
and between processes.

SQLite lets one transaction write at a time. A writer that finds the database
locked is put to sleep by SQLite's busy handler, which tries again after 1, 2,
5, 10 ... up to 100 ms, so a lock that is free again waits for the next try:
with eight requests writing at once, most were served in about 10 ms and the
slowest in 0.6-0.8 s (refresh and SSO in `make bench`, docs/performance.md).
Between the workers of `idp serve` the same happened: while one worker's
writers followed each other, the other's first writer slept in the busy
handler and rarely found the lock free (its request threads spent most of
their time waiting there).

``WriterQueueConnection`` (the ``sqlite3`` connection the engine makes, see
``engine_options``) takes two locks before the first write of a transaction
(the statement on which ``sqlite3`` begins one) and gives them back when the
transaction ends: a lock shared by the process's connections to the same
database file, so the next writer of the process gets it at once, and then an
``flock`` on a file beside the database (``<database>-writers``), which the
processes share, tried again every millisecond at most, so a writer of
another process gets it soon after it is free. The kernel gives an ``flock``
back when its process ends, however it ends. Nothing else changes: a
transaction that writes holds SQLite's lock from its first write to its end
either way, SQLite's busy handler still guards against writers that do not
queue (another program), and a writer that waits longer than the busy
timeout fails with SQLite's own "database is locked", as it did.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from typing import Any

from sqlalchemy.engine import make_url

# What SQLite waits for the lock (PRAGMA busy_timeout, idp.app), in seconds.
BUSY_TIMEOUT = 5.0

# The statements on which sqlite3 begins a transaction (its legacy
# transaction control, which SQLAlchemy's pysqlite dialect uses).
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")

log = logging.getLogger(__name__)

# The longest pause between two tries for another process's writer lock.
_MAX_PAUSE = 0.001


class _WriterQueue:
    """The turn of one database file's writers in this process: the
    process's lock, then the processes' ``flock`` on ``<database>-writers``
    (opened once per process: an ``flock`` belongs to the open file, which
    a forked child would share)."""

    def __init__(self, database: str) -> None:
        self.thread_lock = threading.Lock()
        self.fd: int | None = None
        path = f"{database}-writers"
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            # Correct without it: SQLite's busy handler settles between processes.
            log.warning("SQLite writers of several processes do not queue: %s: %s", path, exc)

    def acquire(self) -> bool:
        """Both locks within the busy timeout, or neither."""
        deadline = time.monotonic() + BUSY_TIMEOUT
        if not self.thread_lock.acquire(timeout=BUSY_TIMEOUT):
            return False
        try:
            locked = self.fd is None or self._lock_file(self.fd, deadline)
        except BaseException:
            self.thread_lock.release()
            raise
        if not locked:
            self.thread_lock.release()
        return locked

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.thread_lock.release()

    @staticmethod
    def _lock_file(fd: int, deadline: float) -> bool:
        pause = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                time.sleep(min(pause, left))
                pause = min(2 * pause, _MAX_PAUSE)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_queues: dict[str, _WriterQueue] = {}
_queues_lock = threading.Lock()


def _queue_for(database: str) -> _WriterQueue:
    key = os.path.realpath(database)
    with _queues_lock:
        queue = _queues.get(key)
        if queue is None:
            queue = _queues[key] = _WriterQueue(key)
        return queue


def _forget_queues() -> None:
    # A forked worker starts with queues of its own (nothing held), and
    # closes its copies of the parent's lock files: the parent's flocks
    # stay the parent's.
    for queue in _queues.values():
        queue.close()
    _queues.clear()


os.register_at_fork(after_in_child=_forget_queues)


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
    """A ``sqlite3`` connection whose writes wait their turn for its
    database file (statements go through ``cursor()``, as SQLAlchemy's do)."""

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._queue = _queue_for(database)
        self._writing = False

    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)

    def before_statement(self, sql: str) -> None:
        if self._writing or sql.lstrip()[:6].upper() not in _WRITES:
            return
        if not self._queue.acquire():
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
            self._queue.release()
