"""The wiring: ``create_app()`` builds the application from its settings, its
stores and senders, the blueprints and the signals between features."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from . import cli, deviceapi, errors, http, i18n, proxy, sqlite_writers
from .accounts import views as account_views
from .accounts.passwords import PasswordService
from .admin import api as admin_api
from .admin import views as admin_views
from .approvals import service as approval_service
from .approvals import views as approval_views
from .auth import sessions
from .auth import views as auth_views
from .config import Settings, default_instance_path, load_settings
from .deviceapp import views as device_app_views
from .devices import changes as device_changes
from .devices import push as device_push
from .devices import service as device_service
from .extensions import DETACHED, babel, csrf, db, init_unit_of_work
from .notify import email_sender, sms_sender
from .oidc import backchannel, published, tokens
from .oidc import server as oidc_server
from .oidc import views as oidc_views
from .oidc.client_cache import ClientCache
from .oidc.keys import KeyRing
from .passkeys import views as passkey_views
from .push import PushService
from .restore import activation as restoration
from .secrets_store import decode_key, load_or_create_dev_secrets
from .sessions import views as session_views
from .state import IDP, Idp
from .store import Store, connect
from .tokens import TokenDigester, derive_key

# The session cookie's name; with an https issuer it is "__Host-idp_session".
SESSION_COOKIE = "idp_session"


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    settings = load_settings(overrides)
    instance_path = Path(settings.instance_path or default_instance_path()).resolve()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    secret_key, kek = settings.secret_key, settings.key_encryption_key
    if not (secret_key and kek):
        # Only reachable with a localhost issuer: Settings refuses otherwise.
        dev = load_or_create_dev_secrets(instance_path)
        secret_key = secret_key or dev["secret_key"]
        kek = kek or dev["key_encryption_key"]
    master_key = decode_key(kek)

    app = Flask(__name__, instance_path=str(instance_path))
    database_url = settings.database_url or f"sqlite:///{instance_path / 'idp.db'}"
    engine_options = {
        **_pool_sizes(database_url, settings),
        "pool_pre_ping": _pre_ping(database_url),
        # A failed statement's error (logged) shows the SQL, not the values.
        "hide_parameters": True,
        **sqlite_writers.engine_options(database_url),
    }
    app.config.update(
        SECRET_KEY=secret_key,
        SQLALCHEMY_DATABASE_URI=database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options,
        # The same database with the same options, a pool of its own for the
        # detached sessions (idp.extensions.detached_session). (Flask-SQLAlchemy
        # gives a bind none of SQLALCHEMY_ENGINE_OPTIONS.)
        SQLALCHEMY_BINDS={DETACHED: {"url": database_url, **engine_options}},
        # With https, a "__Host-" cookie: browsers take it only with Secure,
        # Path=/ and no Domain, so neither a sibling host nor plain http can
        # set or overwrite it (RFC 6265bis §4.1.3.2).
        SESSION_COOKIE_NAME=f"__Host-{SESSION_COOKIE}" if settings.is_https else SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.is_https,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
        PERMANENT_SESSION_LIFETIME=settings.session_lifetime,
        WTF_CSRF_TIME_LIMIT=settings.login_transaction_lifetime,
        # Flask-WTF's extra check on https requests wants a Referer from this
        # host, but every page says "Referrer-Policy: no-referrer" (idp.http),
        # so browsers send none and each form would be refused once the app
        # knows it is served over https (behind a trusted TLS proxy). Forms
        # are protected by the session's CSRF token and SameSite=Lax cookies.
        WTF_CSRF_SSL_STRICT=False,
        BABEL_DEFAULT_LOCALE=settings.default_language,
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        MAX_CONTENT_LENGTH=64 * 1024,
    )

    # The client's address behind the proxies named by trusted_proxies (and
    # X-Forwarded-* ignored without it): request.remote_addr is the client.
    proxy.install(app, settings.trusted_proxies)

    db.init_app(app)
    csrf.init_app(app)

    store = Store(lambda: connect(settings.redis_url, instance_path))
    app.extensions[IDP] = Idp(
        settings=settings,
        store=store,
        digester=TokenDigester(derive_key(master_key, "token-digest")),
        passwords=PasswordService(
            concurrency=settings.password_hash_concurrency,
            memory_kib=settings.password_hash_memory_kib,
            time_cost=settings.password_hash_time_cost,
        ),
        key_encryption_key=master_key,
        keyring=KeyRing(
            encryption_key=derive_key(master_key, "signing-keys"),
            token_lifetime=max(settings.id_token_lifetime, settings.access_token_lifetime),
        ),
        push=PushService.from_settings(
            settings, encryption_key=derive_key(master_key, "vapid-keys")
        ),
        mailer=email_sender(settings, instance_path),
        sms=sms_sender(settings, instance_path),
        clients=ClientCache(store),
    )

    init_unit_of_work(app)
    _make_keys_before_requests(app)
    i18n.init_app(app, babel)
    errors.init_app(app)
    http.init_app(app, settings)
    oidc_server.init_app(app)
    app.register_blueprint(oidc_views.bp)
    app.register_blueprint(oidc_views.api)
    app.register_blueprint(auth_views.bp)
    app.register_blueprint(account_views.bp)
    app.register_blueprint(passkey_views.bp)
    app.register_blueprint(session_views.bp)

    device_push.init_app(app)
    # A deleted device's approvals are cancelled (blinker keeps one connection
    # per receiver, however many apps are created).
    device_service.device_revoking.connect(approval_service.on_device_revoked)
    app.register_blueprint(approval_views.bp)
    app.register_blueprint(device_app_views.bp)

    backchannel.init_app(app)
    # OpenID Connect Back-Channel Logout: the clients of an ended login
    # session are told (after the transaction that ended it commits).
    sessions.sessions_ended.connect(backchannel.on_sessions_ended)
    # A session ended on purpose (the user's "end this session", an
    # administrator's, a deleted device's) takes its refresh tokens with it.
    sessions.sessions_revoking.connect(tokens.on_sessions_revoking)

    # Code 1 shown on a device that is removed (deleted, or refused) is void.
    device_service.device_revoking.connect(restoration.on_device_revoked)

    app.register_blueprint(deviceapi.bp)

    # Every device added or removed is told to the user's e-mail address and
    # other devices (after the receivers above have done their part).
    device_service.device_added.connect(device_changes.on_device_added)
    device_service.device_revoked.connect(device_changes.on_device_revoked)

    app.register_blueprint(admin_api.bp)
    app.register_blueprint(admin_views.bp)
    cli.register(app)
    # Outermost: discovery and the JWKS are answered before anything else runs.
    published.install(app, http.common_headers(settings))
    return app


def _pool_sizes(database_url: str, settings: Settings) -> dict[str, Any]:
    """The pool's sizes and wait (``database_pool_*``); none for a SQLite
    database in memory, whose one connection SQLAlchemy keeps per thread."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return {}
    return {
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_max_overflow,
        "pool_timeout": settings.database_pool_timeout,
    }


def _pre_ping(database_url: str) -> bool:
    """Whether the pool tests a connection each time it hands it out.

    A server's connection may have been dropped while it sat in the pool (the
    server restarted, a proxy closed it when idle): the ping (a round trip)
    finds out and reconnects, so no request fails for it. Without it, the
    first statement on a dropped connection fails: that request answers 5xx
    and rolls back, and SQLAlchemy discards every connection of the pool that
    is older than the failure, so only requests already holding one fail.
    A SQLite connection is a file opened in this process: nothing can drop it,
    and the ping would be a statement for nothing on every request."""
    return make_url(database_url).get_backend_name() != "sqlite"


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """SQLite: enforce foreign keys and let readers run beside a writer."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(sqlite_writers.BUSY_TIMEOUT * 1000)}")
        cursor.close()


def _make_keys_before_requests(app: Flask) -> None:
    """The signing keys and the VAPID key are generated on first use, each
    in a transaction of its own. That must happen before a request has
    written anything: on SQLite, whose one writer would be the request
    itself, the key's transaction would wait for the request's forever. So
    each process makes sure they exist before its first request."""
    ready: list[bool] = []

    @app.before_request
    def _keys() -> None:
        if not ready:
            state = app.extensions[IDP]
            state.keyring.ensure_keys()
            state.push.ensure_key()
            ready.append(True)
