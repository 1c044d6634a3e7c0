"""The database connections: SQLite's are set up and queue their writers;
what is loaded for longer than a request, and a login waiting for its hash,
never hold up requests that need a connection."""

from __future__ import annotations

import socket
import sqlite3
import threading
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from idp.accounts.models import User
from idp.extensions import DETACHED, after_commit, db, give_connection_back
from idp.oidc.client_auth import query_client
from idp.sqlite_writers import BUSY_TIMEOUT, WriterQueueConnection

from .conftest import PASSWORD
from .helpers import Browser, RelyingParty
from .test_transport_security import ISSUER, app_for, stop


def test_each_sqlite_connection_enforces_foreign_keys_and_queues_its_writers(idp: Any) -> None:
    with idp.app.app_context():
        assert set(db.engines) == {None, DETACHED}
        for engine in db.engines.values():
            with engine.connect() as connection:
                dbapi_connection = connection.connection.dbapi_connection
                if engine.dialect.name != "sqlite":
                    assert not isinstance(dbapi_connection, sqlite3.Connection)
                    continue
                assert isinstance(dbapi_connection, WriterQueueConnection)
                pragmas = {
                    name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("foreign_keys", "journal_mode", "busy_timeout")
                }
            busy_timeout = int(BUSY_TIMEOUT * 1000)
            assert pragmas == {
                "foreign_keys": 1, "journal_mode": "wal", "busy_timeout": busy_timeout
            }  # fmt: skip


def test_both_pools_ping_postgresql_connections_and_never_show_values_in_errors(
    idp: Any,
) -> None:
    user = idp.add_user()
    with idp.app.app_context():
        for engine in db.engines.values():
            assert engine.pool._pre_ping == (engine.dialect.name != "sqlite")  # type: ignore[attr-defined]
            with engine.connect() as connection, pytest.raises(IntegrityError) as failed:
                connection.execute(
                    insert(User).values(access_number=user.access_number, sub="secret-value-x")
                )
            # The error (which the server logs) names the statement, not the values.
            assert "secret-value-x" not in str(failed.value)
            assert "parameters hidden" in str(failed.value)


def test_keys_and_clients_load_while_requests_hold_every_connection(idp: Any) -> None:
    """A request holds its connection while it waits for the signing keys,
    which one thread loads for all: the loads have a pool of their own, or
    the loader would wait for a connection the waiting requests hold."""
    client_id, _secret = idp.add_client()
    state = idp.app.extensions["idp"]
    with idp.app.app_context():
        pool = db.engine.pool
        held = [db.engine.connect() for _ in range(pool.size() + pool._max_overflow)]  # type: ignore[attr-defined]
        try:
            assert pool.checkedout() == len(held)
            state.keyring.invalidate()
            assert b'"keys"' in state.keyring.jwks_bytes()
            state.clients.forget()
            client = query_client(client_id)
            assert client is not None and client.client_id == client_id
            assert state.push.public_key()
        finally:
            for connection in held:
                connection.close()
        assert db.engines[DETACHED].url == db.engine.url


def test_a_unit_of_work_that_only_read_gives_its_connection_back(idp: Any) -> None:
    user_id = idp.add_user().id
    with idp.app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None and db.engine.pool.checkedout() == 1
        assert give_connection_back()
        assert db.engine.pool.checkedout() == 0
        assert user.id == user_id  # loaded again
        db.session.rollback()


@pytest.mark.parametrize("what", ["flush", "statement", "lock", "after_commit"])
def test_a_unit_of_work_that_wrote_or_locked_keeps_its_connection(idp: Any, what: str) -> None:
    user_id = idp.add_user().id
    with idp.app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        if what == "flush":
            user.given_name = "Changed"
            db.session.flush()
        elif what == "statement":
            db.session.execute(update(User).where(User.id == user_id).values(given_name="Changed"))
        elif what == "lock":
            db.session.scalar(select(User).where(User.id == user_id).with_for_update())
        else:
            after_commit(lambda: None)
        assert not give_connection_back()
        assert db.engine.pool.checkedout() == 1
        db.session.rollback()
        assert db.session.get(User, user_id).given_name != "Changed"  # type: ignore[union-attr]
        db.session.rollback()


def test_a_login_waiting_for_its_hash_holds_no_connection(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client()  # not first-party: consent follows
    state = idp.app.extensions["idp"]
    hashing = state.passwords._pool  # the hashing threads
    browser = Browser(idp.url)
    page = browser.go(RelyingParty(idp.url, client_id, secret).authorize_url()[0])
    # Every hashing thread busy: the login's hash has to wait in the queue.
    go_on = threading.Event()
    blockers = [hashing.submit(go_on.wait, 30) for _ in range(hashing._max_workers)]
    try:
        answers: list[Any] = []
        login = threading.Thread(
            target=lambda: answers.append(browser.sign_in(page, user.access_number, PASSWORD))
        )
        login.start()
        while hashing._work_queue.qsize() == 0 and login.is_alive():
            threading.Event().wait(0.005)
        assert login.is_alive(), answers
        with idp.app.app_context():
            assert db.engine.pool.checkedout() == 0
    finally:
        go_on.set()
    login.join(30)
    for blocker in blockers:
        blocker.result(30)
    [answer] = answers
    assert 'value="allow"' in answer.text, answer.text[:300]


def test_without_its_database_the_provider_answers_503(backend_overrides: dict[str, Any]) -> None:
    with socket.socket() as refusing:  # bound, never listening: connections are refused
        refusing.bind(("127.0.0.1", 0))
        port = refusing.getsockname()[1]
        app = app_for(
            backend_overrides, database_url=f"postgresql+psycopg://idp@127.0.0.1:{port}/idp"
        )
        try:
            client = app.test_client()
            page = client.get("/login", base_url=ISSUER)
            assert page.status_code == 503, page.text[:300]
            assert "temporarily unavailable" in page.text
            token = client.post(
                "/token",
                data={"grant_type": "client_credentials"},
                headers={"Accept": "application/json"},
                base_url=ISSUER,
            )
            assert token.status_code == 503
            assert token.json == {
                "error": "temporarily_unavailable",
                "error_description": (
                    "The service is temporarily unavailable. Please try again in a moment."
                ),
            }
        finally:
            stop(app)


def test_the_pools_take_their_sizes_and_wait_from_the_settings(
    backend_overrides: dict[str, Any],
) -> None:
    """database_pool_size, _max_overflow and _timeout, for both pools: with
    one connection in use and none more allowed, a request that needs one
    answers 503 once the wait is over."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    app = app_for(
        backend_overrides,
        database_pool_size=1,
        database_max_overflow=0,
        database_pool_timeout=0.2,
    )
    try:
        with app.app_context():
            for engine in db.engines.values():
                assert engine.pool.size() == 1  # type: ignore[attr-defined]
                with engine.connect(), pytest.raises(PoolTimeout):
                    engine.connect()
            with db.engine.connect():
                answer = app.test_client().get(
                    "/device/v1/status",
                    headers={"Authorization": "Bearer not-a-device-token"},
                    base_url=ISSUER,
                )
        assert answer.status_code == 503, answer.text[:300]
    finally:
        stop(app)
