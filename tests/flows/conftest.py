"""Live IdPs on the backend the test runs with: the worker's shared one
(tests/flows/shared.py), reset before each test, or one of the test's own."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer

from clients.demo_rp import Tokens
from clients.demo_rp import create_app as create_rp_app

from ..conftest import PostgresServer, RedisServer, copy_sqlite
from ..support.live_server import Listening, stop
from .shared import MAIL_SETTINGS, RUNTIME_SETTINGS, SharedIdp

PASSWORD = "Correct-Horse-9"
# argon2id at a small cost for the IdPs the tests start in this process (an
# issuer on localhost allows it): at OWASP's cost, hashing was 13 % of the
# suite's CPU. The processes test_serve.py starts hash at the default cost.
CHEAP_HASHING = {"password_hash_memory_kib": 1024, "password_hash_time_cost": 1}


@dataclass
class LiveIdp:
    url: str
    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread
    # What start_idp chose for it (issuer, secret_key, key_encryption_key,
    # the password hashing cost).
    settings: dict[str, Any] = field(default_factory=dict)
    _n: int = field(default=0)

    def add_user(self, status: str = "active", **fields: Any) -> Any:
        from idp.accounts.service import create_user
        from idp.extensions import db

        with self.app.app_context():
            user = create_user(self.app.extensions["idp"].passwords, password=PASSWORD, **fields)
            user.status = status
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    def add_client(self, **fields: Any) -> tuple[str, str | None]:
        from idp.extensions import db
        from idp.oidc.clients import create_client

        self._n += 1
        fields.setdefault("name", f"Client {self._n}")
        fields.setdefault("redirect_uris", ["http://localhost:9/callback"])
        with self.app.app_context():
            client, secret = create_client(**fields)
            client_id = client.client_id
            db.session.commit()
            return client_id, secret

    def events(self, event_type: str) -> list[Any]:
        """The audit events of ``event_type``, in the order they were recorded."""
        from idp.audit import AuditEvent
        from idp.extensions import db

        with self.app.app_context():
            return list(
                db.session.scalars(
                    select(AuditEvent).where(AuditEvent.type == event_type).order_by(AuditEvent.id)
                )
            )

    def stop(self) -> None:
        from idp.extensions import dispose_pools
        from idp.oidc.backchannel import EXECUTOR_KEY

        stop(self.server, self.thread)
        # Back-channel logouts still on their way finish (each has a timeout)
        # before the database and Redis go.
        self.app.extensions[EXECUTOR_KEY].shutdown(wait=True)
        # Release what the app holds: pooled SQL connections, and Redis (the
        # embedded server stops with its last client).
        with self.app.app_context():
            dispose_pools()
        self.app.extensions["idp"].store.close()


def start_idp(overrides: dict[str, Any]) -> LiveIdp:
    from idp.app import create_app

    listening = Listening()
    url = f"http://localhost:{listening.port}"
    chosen = {
        "issuer": url,
        "secret_key": secrets.token_urlsafe(48),
        "key_encryption_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        **CHEAP_HASHING,
    }
    config = {**chosen, **overrides}
    try:
        app = create_app(config)
    except BaseException:
        listening.close()
        raise
    server, thread = listening.serve(app)
    used = {key: config[key] for key in chosen}
    return LiveIdp(url=url, app=app, server=server, thread=thread, settings=used)


@pytest.fixture(scope="session")
def shared_idps() -> Iterator[dict[str, SharedIdp]]:
    """The worker's shared IdP of each backend, started on first use."""
    started: dict[str, SharedIdp] = {}
    yield started
    for shared in started.values():
        shared.live.stop()


def start_shared_idp(backend: str, request: pytest.FixtureRequest) -> SharedIdp:
    """An IdP on a database and Redis of its own (not one ``backend_overrides`` hands out)."""
    instance: Path = request.getfixturevalue("tmp_path_factory").mktemp(f"shared-{backend}")
    overrides: dict[str, Any] = {"instance_path": str(instance)}
    if backend == "embedded":
        copy_sqlite(request.getfixturevalue("sqlite_template"), instance / "idp.db")
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        overrides["database_url"] = postgres.url(postgres.create_database())
        overrides["redis_url"] = redis_server.url(redis_server.shared_db)
    live = start_idp(overrides)
    shared = SharedIdp(live=live, overrides={**overrides, **live.settings})
    shared.remember_keys()
    return shared


@pytest.fixture
def idp_factory(
    backend: str, request: pytest.FixtureRequest, shared_idps: dict[str, SharedIdp]
) -> Iterator[Callable[..., LiveIdp]]:
    """IdPs for this test, all on one backend of the test's kind.

    The first IdP a test asks for is the worker's shared one (reset for the
    test) when its settings are default ones or ones the app reads on each use
    (shared.RUNTIME_SETTINGS, MAIL_SETTINGS); later ones run on its database,
    Redis and instance folder (and its key encryption key, which opens the
    keys there). A first IdP with other settings (its own issuer, keys, Redis,
    trusted proxies ...) runs on a fresh backend (``backend_overrides``) with
    any later ones."""
    started: list[LiveIdp] = []
    claimed: list[SharedIdp] = []
    backend_settings: dict[str, Any] | None = None

    def factory(**settings: Any) -> LiveIdp:
        nonlocal backend_settings
        if backend_settings is None and set(settings) <= RUNTIME_SETTINGS | MAIL_SETTINGS:
            shared = shared_idps.get(backend)
            if shared is None:
                shared = shared_idps[backend] = start_shared_idp(backend, request)
            shared.reset()
            claimed.append(shared)
            if settings:
                shared.configure(settings)
            backend_settings = {
                key: shared.overrides[key]
                for key in ("instance_path", "database_url", "redis_url", "key_encryption_key")
                if key in shared.overrides
            }
            return replace(shared.live, _n=0)
        if backend_settings is None:
            backend_settings = request.getfixturevalue("backend_overrides")
        live = start_idp({**backend_settings, **settings})
        started.append(live)
        return live

    yield factory
    for live in started:
        live.stop()
    for shared in claimed:
        shared.restore()


@pytest.fixture
def idp(idp_factory: Callable[..., LiveIdp]) -> LiveIdp:
    return idp_factory()


def _available(fd: int) -> bytes:
    """What a pipe holds now, without waiting for more."""
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def process_group() -> Iterator[list[subprocess.Popen[str]]]:
    """Started processes; whatever is still running at the end is killed.

    What a process printed and nobody read is printed here, for the report of
    a test that failed before it read it (pytest shows the captured output)."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None and not process.stdout.closed:
            # Not read to its end: a process it left (outside its group)
            # may still hold the pipe open, so only what is there now.
            output = _available(process.stdout.fileno()).decode(errors="replace")
            process.stdout.close()
            if output:
                print(f"--- output of {' '.join(map(str, process.args))} ---\n{output[-20000:]}")


# --- the demo relying party, FinanceCloud --------------------------------------------


@dataclass
class LiveRp:
    url: str
    app: Flask
    client_id: str
    client_secret: str | None
    server: BaseWSGIServer
    thread: threading.Thread

    def tokens(self, browser: requests.Session) -> Tokens | None:
        """What the RP holds for this browser (server-side, keyed from the cookie)."""
        cookie = browser.cookies.get("financecloud_session")
        serializer = self.app.session_interface.get_signing_serializer(self.app)  # type: ignore[attr-defined]
        key = serializer.loads(cookie).get("tokens")
        stored = self.app.extensions["demo_rp"].store.get("tokens:" + key) if key else None
        return Tokens.from_json(stored) if stored else None


@pytest.fixture
def listen() -> Iterator[Callable[[], Listening]]:
    """Ports taken now for servers the test starts later (``Listening``); one
    never served is given back at the end."""
    taken: list[Listening] = []

    def take() -> Listening:
        taken.append(Listening())
        return taken[-1]

    yield take
    for listening in taken:
        if not listening.serving:
            listening.close()


@pytest.fixture
def rp_with(idp: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., LiveRp]]:
    """FinanceCloud (the demo RP) on a port taken beforehand (``Listening``:
    its redirect URIs name it) with given client credentials, e.g. those an
    administrator got on the admin pages."""
    for name in ("ISSUER", "CLIENT_ID", "CLIENT_SECRET", "SCOPE", "ACR_VALUES", "SECRET_KEY"):
        monkeypatch.delenv(f"DEMO_RP_{name}", raising=False)
    started: list[LiveRp] = []

    def start(
        listening: Listening,
        client_id: str,
        secret: str | None,
        *,
        method: str = "client_secret_basic",
        **settings: Any,
    ) -> LiveRp:
        base = f"http://localhost:{listening.port}"
        app = create_rp_app(
            {
                "ISSUER": idp.url,
                "CLIENT_ID": client_id,
                "CLIENT_SECRET": secret,
                "TOKEN_ENDPOINT_AUTH_METHOD": method,
                "BASE_URL": base,
                **settings,
            }
        )
        server, thread = listening.serve(app)
        live = LiveRp(base, app, client_id, secret, server, thread)
        started.append(live)
        return live

    yield start
    for live in started:
        stop(live.server, live.thread)


@pytest.fixture
def rp_factory(
    idp: Any, rp_with: Callable[..., LiveRp], listen: Callable[[], Listening]
) -> Callable[..., LiveRp]:
    """FinanceCloud with a client of its own, registered for it."""

    def factory(
        *,
        public: bool = False,
        first_party: bool = False,
        require_mfa: bool = False,
        backchannel: bool = False,
        **settings: Any,
    ) -> LiveRp:
        listening = listen()
        base = f"http://localhost:{listening.port}"
        method = "none" if public else "client_secret_basic"
        client_id, secret = idp.add_client(
            name="FinanceCloud",
            redirect_uris=[base + "/callback"],
            post_logout_redirect_uris=[base + "/"],
            token_endpoint_auth_method=method,
            first_party=first_party,
            require_mfa=require_mfa,
            # As the demo seed registers it (idp.demo): OpenID Connect
            # Back-Channel Logout at the RP's /backchannel-logout.
            backchannel_logout_uri=base + "/backchannel-logout" if backchannel else None,
        )
        return rp_with(listening, client_id, secret, method=method, **settings)

    return factory


@pytest.fixture
def rp(rp_factory: Callable[..., LiveRp]) -> LiveRp:
    return rp_factory()


# --- a real browser (tests/flows/browser.py) ---------------------------------------------

from .browser import chromium, full_chromium, new_context, playwright  # noqa: E402, F401
