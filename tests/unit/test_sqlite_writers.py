"""SQLite's writers queue on a lock of their own process (idp.sqlite_writers):
a writer that meets another waits its turn instead of being left to SQLite's
busy handler, and the lock goes with the transaction, however it ends."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from idp import sqlite_writers
from idp.sqlite_writers import WriterQueueConnection

WAIT = 10

Connect = Callable[..., WriterQueueConnection]


@pytest.fixture
def database(tmp_path: Path) -> str:
    path = str(tmp_path / "writers.db")
    with closing(sqlite3.connect(path)) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    return path


@pytest.fixture
def threads() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


@pytest.fixture
def connect() -> Iterator[Connect]:
    opened: list[sqlite3.Connection] = []

    def open_one(database: str, busy_timeout: float = 0) -> WriterQueueConnection:
        # No busy timeout by default: on its own, SQLite refuses a second
        # writer at once.
        connection = sqlite3.connect(
            database, timeout=busy_timeout, factory=WriterQueueConnection, check_same_thread=False
        )
        opened.append(connection)
        assert isinstance(connection, WriterQueueConnection)
        return connection

    yield open_one
    for connection in opened:
        connection.close()


def write(connection: sqlite3.Connection, n: int) -> None:
    connection.cursor().execute("INSERT INTO t (n) VALUES (?)", (n,))


def rows(database: str) -> list[int]:
    with closing(sqlite3.connect(database)) as reader:
        return [n for (n,) in reader.execute("SELECT n FROM t ORDER BY n")]


def waiting_for_its_turn(thread_id: int) -> bool:
    """The thread waits for the process's lock (``acquire``) or for another
    process's writer (``_lock_file``, between its tries)."""
    frame = sys._current_frames().get(thread_id)
    return (
        frame is not None
        and frame.f_code.co_filename == sqlite_writers.__file__
        and frame.f_code.co_name in ("acquire", "_lock_file")
    )


def wait_until_waiting(future: Future[int], thread_ids: list[int]) -> None:
    """Until the writer running ``future`` waits its turn (or has finished,
    which it must not have)."""
    while not future.done() and not (thread_ids and waiting_for_its_turn(thread_ids[0])):
        threading.Event().wait(0.001)


def write_when_turn_comes(
    connection: WriterQueueConnection, threads: ThreadPoolExecutor
) -> Future[int]:
    """Write 2 and commit, in a thread; returned once the writer waits."""
    thread_ids: list[int] = []

    def writer() -> int:
        thread_ids.append(threading.get_ident())
        write(connection, 2)
        connection.commit()
        return 2

    writing = threads.submit(writer)
    wait_until_waiting(writing, thread_ids)
    return writing


def test_a_second_writer_waits_for_the_first_instead_of_being_refused(
    database: str, threads: ThreadPoolExecutor, connect: Connect
) -> None:
    first, second = connect(database), connect(database)
    write(first, 1)
    writing = write_when_turn_comes(second, threads)
    # Without the queue, SQLite has refused the second writer by now.
    assert not writing.done()
    first.commit()
    assert writing.result(WAIT) == 2
    assert rows(database) == [1, 2]


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_the_lock_goes_with_the_transaction(database: str, connect: Connect, end: str) -> None:
    first, second = connect(database), connect(database)
    write(first, 1)
    getattr(first, end)()
    write(second, 2)  # at once: the lock is free again
    second.commit()
    assert rows(database) == ([1, 2] if end == "commit" else [2])


def test_readers_do_not_wait_for_a_writer(database: str, connect: Connect) -> None:
    writer, reader = connect(database), connect(database)
    write(writer, 1)
    assert reader.cursor().execute("SELECT count(*) FROM t").fetchone() == (0,)
    writer.commit()


def test_a_writer_that_waits_longer_than_the_busy_timeout_is_told_the_database_is_locked(
    database: str, monkeypatch: pytest.MonkeyPatch, threads: ThreadPoolExecutor, connect: Connect
) -> None:
    monkeypatch.setattr(sqlite_writers, "BUSY_TIMEOUT", 0.01)
    first, second = connect(database), connect(database)
    write(first, 1)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        threads.submit(write, second, 2).result(WAIT)
    first.commit()
    write(second, 2)  # the refused writer holds nothing, and can write again
    second.commit()
    assert rows(database) == [1, 2]


def test_a_failed_commit_keeps_the_lock_until_the_rollback(
    database: str, monkeypatch: pytest.MonkeyPatch, connect: Connect
) -> None:
    monkeypatch.setattr(sqlite_writers, "BUSY_TIMEOUT", 0.01)
    first, second = connect(database), connect(database)
    first.cursor().execute("PRAGMA foreign_keys=ON")
    first.cursor().execute(
        "CREATE TABLE child (parent INTEGER REFERENCES t (n) DEFERRABLE INITIALLY DEFERRED)"
    )
    first.cursor().execute("INSERT INTO child (parent) VALUES (99)")
    with pytest.raises(sqlite3.IntegrityError):
        first.commit()  # the deferred constraint fails: the transaction stays open
    assert first.in_transaction
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        write(second, 2)
    first.rollback()
    write(second, 2)
    second.commit()
    assert rows(database) == [2]


# --- between processes ------------------------------------------------------------

# Another process's writer: writes, says so, commits when told to.
HOLDER = """
import sqlite3, sys
from idp.sqlite_writers import WriterQueueConnection

connection = sqlite3.connect(sys.argv[1], timeout=0, factory=WriterQueueConnection)
connection.cursor().execute("INSERT INTO t (n) VALUES (1)")
print("writing", flush=True)
sys.stdin.readline()
connection.commit()
print("committed", flush=True)
"""


@pytest.fixture
def other_process(database: str) -> Iterator[subprocess.Popen[str]]:
    """Another process in the middle of a write transaction."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, database],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "writing\n"
            yield holder
        finally:
            holder.kill()


def commit_in(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.stdout.readline() == "committed\n"


def test_a_writer_waits_for_another_processs_writer(
    database: str,
    other_process: subprocess.Popen[str],
    threads: ThreadPoolExecutor,
    connect: Connect,
) -> None:
    """The processes queue on the flock: our writer never reaches SQLite
    while the other holds the lock (with no busy timeout SQLite would
    refuse it at once), and writes as soon as the other has committed."""
    writing = write_when_turn_comes(connect(database), threads)
    assert not writing.done()
    commit_in(other_process)
    assert writing.result(WAIT) == 2
    assert rows(database) == [1, 2]


def test_a_writer_process_that_dies_gives_its_turn_back(
    database: str,
    other_process: subprocess.Popen[str],
    threads: ThreadPoolExecutor,
    connect: Connect,
) -> None:
    # SQLite's busy timeout as the app sets it: the dying process closes its
    # files one by one, and its flock may go before its lock on the database.
    ours = connect(database, busy_timeout=sqlite_writers.BUSY_TIMEOUT)
    writing = write_when_turn_comes(ours, threads)
    other_process.send_signal(signal.SIGKILL)  # mid-transaction, no cleanup
    assert writing.result(WAIT) == 2
    assert rows(database) == [2]


def test_a_writer_waiting_on_another_process_longer_than_the_busy_timeout_is_refused(
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    other_process: subprocess.Popen[str],
    connect: Connect,
) -> None:
    monkeypatch.setattr(sqlite_writers, "BUSY_TIMEOUT", 0.05)
    ours = connect(database)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        write(ours, 2)
    commit_in(other_process)
    write(ours, 2)  # the refused writer holds nothing, and can write again
    ours.commit()
    assert rows(database) == [1, 2]


def test_without_a_lock_file_the_processes_leave_it_to_sqlite(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, connect: Connect
) -> None:
    """Where no file can be made beside the database, writers still queue
    in their process and SQLite settles between processes (as before the
    file lock); the operator is told."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    path = str(directory / "writers.db")
    with closing(sqlite3.connect(path)) as setup:
        setup.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    Path(f"{path}-writers").mkdir()  # in the way of the lock file
    ours = connect(path)
    write(ours, 1)
    ours.commit()
    assert rows(path) == [1]
    assert "do not queue" in caplog.text


def test_the_engine_uses_it_for_a_database_file_only(database: str) -> None:
    options = sqlite_writers.engine_options(f"sqlite:///{database}")
    assert options == {"connect_args": {"factory": WriterQueueConnection}}
    assert sqlite_writers.engine_options("sqlite://") == {}
    assert sqlite_writers.engine_options("sqlite:///:memory:") == {}
    assert sqlite_writers.engine_options("postgresql+psycopg://idp@localhost/idp") == {}

    engine = create_engine(f"sqlite:///{database}", **options)
    try:
        # A connection given back to the pool without a commit is rolled
        # back there, and the lock with it.
        with engine.connect() as connection:
            connection.execute(text("INSERT INTO t (n) VALUES (1)"))
            assert isinstance(connection.connection.dbapi_connection, WriterQueueConnection)
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t (n) VALUES (2)"))
        assert rows(database) == [2]
    finally:
        engine.dispose()
