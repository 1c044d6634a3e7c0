"""Web Push from the app to a real (stand-in) push service, on every backend.

The VAPID key lives in SQL: generated once, encrypted at rest, the same for
every instance; the stand-in checks VAPID exactly as a push service does and
decrypts what it receives.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask
from sqlalchemy import func, select

import idp.push.keys as keys_module
from idp.app import create_app
from idp.extensions import db, dispose_pools
from idp.push import PushService, VapidKey
from idp.tokens import derive_key
from tests.support.push_service import PushServiceStandIn

APPROVAL = {"type": "approval", "id": "apv_7Qm2"}
AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(backend_overrides: dict[str, Any]) -> Iterator[AppFactory]:
    """Apps ("instances") on this test's database, sharing one key encryption key."""
    shared = {
        "issuer": "http://localhost:5000",
        "secret_key": secrets.token_urlsafe(48),
        "key_encryption_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        **backend_overrides,
    }
    apps: list[Flask] = []

    def factory(**settings: Any) -> Flask:
        app = create_app({**shared, **settings})
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            dispose_pools()
        app.extensions["idp"].store.close()


def push_of(app: Flask) -> PushService:
    service: PushService = app.extensions["idp"].push
    return service


def test_a_push_reaches_the_push_service_signed_and_encrypted(
    make_app: AppFactory, push_service: PushServiceStandIn
) -> None:
    app = make_app()
    with app.app_context():
        push = push_of(app)
        # The browser subscribes with our applicationServerKey (RFC 8292 §3.2)...
        subscription = push_service.new_subscription(application_server_key=push.public_key())
        # ...and the device registers the subscription with us.
        stored = push.parse_subscription(subscription).as_dict()
        result = push.send(stored, APPROVAL, ttl=120)

    assert (result.delivered, result.gone, result.status) == (True, False, 201)
    message = push_service.wait_for_message(subscription)
    assert message.json() == APPROVAL  # decrypted by the stand-in (RFC 8291)
    with app.app_context():
        assert message.vapid_key == push_of(app).public_key()
    assert message.claims["aud"] == push_service.url
    assert message.claims["sub"] == "mailto:admin@localhost"


def test_a_gone_subscription_is_reported(
    make_app: AppFactory, push_service: PushServiceStandIn
) -> None:
    app = make_app()
    subscription = push_service.new_subscription()
    push_service.mark_gone(subscription)
    with app.app_context():
        result = push_of(app).send(subscription, APPROVAL, ttl=60)
    # RFC 8030 §7.3: 410 Gone, the caller drops the subscription.
    assert (result.delivered, result.gone, result.status) == (False, True, 410)


def test_an_unreachable_push_service_costs_at_most_the_timeout(
    make_app: AppFactory, push_service: PushServiceStandIn
) -> None:
    app = make_app(push_timeout=0.5)
    # A port nobody listens on, and one that accepts connections but never answers.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        for port, error in ((closed_port, "network_error"), (silent.getsockname()[1], "timeout")):
            subscription = push_service.new_subscription()
            subscription["endpoint"] = f"http://127.0.0.1:{port}/push/x"
            with app.app_context():
                started = time.monotonic()
                result = push_of(app).send(subscription, APPROVAL, ttl=60)
                elapsed = time.monotonic() - started
            assert (result.delivered, result.gone, result.error) == (False, False, error)
            assert elapsed < 3, elapsed
    finally:
        silent.close()


def test_instances_starting_together_settle_on_one_key(
    make_app: AppFactory, push_service: PushServiceStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both instances find no key, both generate one: both then use the oldest."""
    first, second = make_app(), make_app()
    both_looked = threading.Barrier(2, timeout=10)
    real_oldest = keys_module._oldest

    def oldest_then_wait(session: Any) -> VapidKey | None:
        row = real_oldest(session)
        if row is None:
            both_looked.wait()  # neither inserts before the other has looked
        return row

    monkeypatch.setattr(keys_module, "_oldest", oldest_then_wait)
    seen: dict[str, str] = {}

    def start(name: str, app: Flask) -> None:
        with app.app_context():
            seen[name] = push_of(app).public_key()

    threads = [threading.Thread(target=start, args=item) for item in (("a", first), ("b", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    monkeypatch.undo()

    assert seen["a"] == seen["b"]
    with first.app_context():
        assert db.session.scalar(select(func.count()).select_from(VapidKey)) == 1
        assert db.session.scalar(select(VapidKey.public_key)) == seen["a"]

    # A third instance reads the key, and a push from either is accepted by a
    # subscription bound to it.
    third = make_app()
    subscription = push_service.new_subscription(application_server_key=seen["a"])
    for app in (second, third):
        with app.app_context():
            assert push_of(app).public_key() == seen["a"]
            assert push_of(app).send(subscription, APPROVAL, ttl=60).delivered


def test_the_private_key_is_encrypted_at_rest(
    make_app: AppFactory, backend_overrides: dict[str, Any], push_service: PushServiceStandIn
) -> None:
    kek = base64.urlsafe_b64encode(os.urandom(32)).decode()
    app = make_app(key_encryption_key=kek)
    with app.app_context():
        public = push_of(app).public_key()
        row = db.session.scalars(select(VapidKey)).one()
        stored = bytes(row.private_key_encrypted)
        private = push_of(app)._keys.current().private_key  # type: ignore[attr-defined]
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    assert row.public_key == public
    assert der not in stored and scalar not in stored

    # AES-256-GCM under the "vapid-keys" subkey of the key encryption key.
    subkey = derive_key(base64.urlsafe_b64decode(kek), "vapid-keys")
    aad = b"freigabe vapid-key v1:" + public.encode()
    assert AESGCM(subkey).decrypt(stored[:12], stored[12:], aad) == der

    # An instance with another key encryption key cannot use it, and says so
    # in the log rather than failing the login that sends the push.
    stranger = make_app(key_encryption_key=base64.urlsafe_b64encode(os.urandom(32)).decode())
    with stranger.app_context():
        result = push_of(stranger).send(push_service.new_subscription(), APPROVAL, ttl=60)
    assert (result.delivered, result.error) == (False, "vapid_key_unavailable")
