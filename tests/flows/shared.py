"""One live IdP per worker and backend, shared by the flow tests, reset before each.

Starting an IdP (create_app, the embedded Redis, the signing and VAPID keys)
takes seconds, and most flow tests want one with the default settings. Each
xdist worker starts one per backend, on a database and Redis of its own (not
those ``backend_overrides`` hands out), and every test that takes it starts
from the state of a fresh deployment:

- the previous test's background work (Web Push, back-channel logouts) has
  finished: the app's thread pools are drained and replaced;
- every table is emptied (DELETE; on PostgreSQL after ending the sessions a
  test left inside a transaction, and the sequences start again), then the
  signing keys and the VAPID key the server made when it started are put
  back, and the key ring forgets what it cached (a test may have rotated keys);
- its Redis database is flushed (sessions, codes, rate-limit counters);
- the outbox (mails and text messages) is removed.

A test may change settings the app reads on each use (``RUNTIME_SETTINGS``);
they are set on the running app for that test only. Settings create_app()
uses to build something else need a server of their own (tests/flows/conftest.py
``idp_factory``).
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import MetaData, Table, select, text

# Read through idp().settings whenever they are used (checked in idp/: none is
# copied by create_app or cached), so a test can set them on the shared app.
RUNTIME_SETTINGS = frozenset(
    {
        "admin_idle_timeout",
        "approval_code_digits",
        "approval_code_failures",
        "approval_push_limit",
        "approval_request_limit",
        "client_registration_open",
        "client_registration_rate_limit",
        "geoip_database",
        "login_failures_per_account",
        "login_failures_per_ip",
        "restore_failure_window",
        "restore_failures_per_ip",
        "restore_failures_per_login",
        "restore_veto_window",
        "webauthn_refuse_sign_count_regression",
    }
)
# create_app() builds the mail sender from these: it is built again (idp.notify.email_sender).
MAIL_SETTINGS = frozenset({"smtp_host", "smtp_port", "smtp_security"})
# Made by the server when it starts and kept across resets (sealed with its key).
KEY_TABLES = ("signing_keys", "vapid_keys")


@dataclass
class SharedIdp:
    """A running IdP (``live``: tests/flows/conftest.py LiveIdp) and what it
    needs to be reset and reconfigured."""

    live: Any
    overrides: dict[str, Any]
    keys: list[tuple[Table, list[dict[str, Any]]]] = field(default_factory=list)
    _saved: tuple[Any, Any] | None = None

    @property
    def app(self) -> Flask:
        return self.live.app  # type: ignore[no-any-return]

    def remember_keys(self) -> None:
        """Make the keys now (as the first request would) and keep their rows."""
        from idp.extensions import db

        state = self.app.extensions["idp"]
        with self.app.app_context():
            state.keyring.ensure_keys()
            state.push.ensure_key()
            with db.engine.connect() as conn:
                self.keys = [
                    (table, [dict(row) for row in conn.execute(select(table)).mappings()])
                    for table in (db.metadata.tables[name] for name in KEY_TABLES)
                ]

    def reset(self) -> None:
        """The state of a fresh deployment (see the module's docstring)."""
        from idp.extensions import db

        state = self.app.extensions["idp"]
        drain_background_work(self.app)
        with self.app.app_context():
            _empty_tables(db.engine, db.metadata)
            with db.engine.begin() as conn:
                for table, rows in self.keys:
                    if rows:
                        conn.execute(table.insert(), rows)
            state.keyring.invalidate()
        state.store.redis.flushdb()
        shutil.rmtree(Path(self.app.instance_path) / "outbox", ignore_errors=True)

    def configure(self, settings: dict[str, Any]) -> None:
        """Run with ``settings`` until ``restore``; only RUNTIME_SETTINGS and MAIL_SETTINGS."""
        from idp.config import load_settings
        from idp.notify import email_sender

        unknown = set(settings) - RUNTIME_SETTINGS - MAIL_SETTINGS
        assert not unknown, f"not settable on a running app: {sorted(unknown)}"
        state = self.app.extensions["idp"]
        self._saved = (state.settings, state.mailer)
        state.settings = load_settings({**self.overrides, **settings})
        if MAIL_SETTINGS & set(settings):
            state.mailer = email_sender(state.settings, Path(self.app.instance_path))

    def restore(self) -> None:
        """After the test: its background work done, the default settings back."""
        drain_background_work(self.app)
        if self._saved is not None:
            state = self.app.extensions["idp"]
            state.settings, state.mailer = self._saved
            self._saved = None


def drain_background_work(app: Flask) -> None:
    """Wait for what the app's thread pools were given, and give it new ones."""
    for key, value in list(app.extensions.items()):
        if isinstance(value, ThreadPoolExecutor):
            value.shutdown(wait=True)
            app.extensions[key] = ThreadPoolExecutor(
                max_workers=value._max_workers,
                thread_name_prefix=value._thread_name_prefix,
            )


def _empty_tables(engine: Any, metadata: MetaData) -> None:
    """Every table emptied; on PostgreSQL the sequences start again at 1.

    DELETE, children first: on tables this small a tenth of TRUNCATE's cost,
    which makes new files for every table and index. The pool keeps its
    connections: a new PostgreSQL session is a new server process."""
    tables = [t for t in reversed(metadata.sorted_tables) if t.name != "alembic_version"]
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            # A session a test left inside a transaction (a stream still
            # open) would hold row locks the DELETEs wait for; the pool
            # replaces what is ended (pool_pre_ping). Idle ones hold nothing.
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend' AND state <> 'idle'"
                )
            )
            for table in tables:
                conn.execute(table.delete())
            sequences = conn.scalars(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
            ).all()
            for sequence in sequences:
                conn.execute(
                    text("SELECT setval(CAST(quote_ident(:name) AS regclass), 1, false)"),
                    {"name": sequence},
                )
        return
    with engine.begin() as conn:
        # Checked when the transaction commits, when every table is empty.
        conn.execute(text("PRAGMA defer_foreign_keys = ON"))
        for table in tables:
            conn.execute(table.delete())
