"""A live IdP per test, on the backend the test runs with."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

PASSWORD = "Correct-Horse-9"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveIdp:
    url: str
    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread
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
        from idp.audit import AuditEvent
        from idp.extensions import db

        with self.app.app_context():
            return list(db.session.scalars(select(AuditEvent).where(AuditEvent.type == event_type)))

    def stop(self) -> None:
        from idp.extensions import db

        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
        # Release what the app holds: pooled SQL connections, and Redis (the
        # embedded server stops with its last client).
        with self.app.app_context():
            db.engine.dispose()
        self.app.extensions["idp"].store.close()


def start_idp(overrides: dict[str, Any]) -> LiveIdp:
    from idp import create_app

    port = free_port()
    url = f"http://localhost:{port}"
    config = {
        "issuer": url,
        "secret_key": secrets.token_urlsafe(48),
        "key_encryption_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        **overrides,
    }
    app = create_app(config)
    server = make_server("localhost", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return LiveIdp(url=url, app=app, server=server, thread=thread)


@pytest.fixture
def idp_factory(backend_overrides: dict[str, Any]) -> Iterator[Callable[..., LiveIdp]]:
    started: list[LiveIdp] = []

    def factory(**settings: Any) -> LiveIdp:
        live = start_idp({**backend_overrides, **settings})
        started.append(live)
        return live

    yield factory
    for live in started:
        live.stop()


@pytest.fixture
def idp(idp_factory: Callable[..., LiveIdp]) -> LiveIdp:
    return idp_factory()


@pytest.fixture
def process_group() -> Iterator[list[subprocess.Popen[str]]]:
    """Started processes; whatever is still running at the end is killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
