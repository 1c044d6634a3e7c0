"""Concurrent writes of one row are upserts: no request ends in a 500
because another did the same thing at the same moment."""

from __future__ import annotations

import sqlite3
from typing import Any

import requests

from idp.extensions import DETACHED, db
from idp.oidc.client_auth import query_client
from idp.sqlite_writers import BUSY_TIMEOUT, WriterQueueConnection

from .conftest import PASSWORD
from .helpers import Browser, RelyingParty
from .test_admin_api import automation
from .test_concurrent_limits import at_once


def test_two_sign_ins_granting_consent_at_once_both_succeed(idp: Any) -> None:
    user = idp.add_user()
    for _round in range(5):
        client_id, secret = idp.add_client()  # not first-party: consent is asked
        rp = RelyingParty(idp.url, client_id, secret)
        pages = []
        for scope in ("openid profile", "openid email"):
            browser = Browser(idp.url)
            page = browser.sign_in(
                browser.go(rp.authorize_url(scope=scope)[0]), user.access_number, PASSWORD
            )
            assert 'value="allow"' in page.text, page.text[:300]
            pages.append((browser, page))
        answers = allow_at_once(pages)
        assert [a.status_code for a in answers] == [302, 302]
        # Both grants are remembered: neither sign-in is asked again.
        browser = pages[0][0]
        again = browser.go(rp.authorize_url(scope="openid profile email")[0])
        assert again.status_code == 302, again.text[:300]


def allow_at_once(pages: list[tuple[Browser, requests.Response]]) -> list[requests.Response]:
    return at_once(len(pages), lambda i: pages[i][0].allow(pages[i][1]))


def test_two_registrations_of_one_client_id_at_once_give_one_client(idp: Any) -> None:
    api = automation(idp)
    for n in range(5):
        body = {"client_name": "Payroll", "client_id": f"payroll-{n}",
                "grant_types": ["client_credentials"], "scope": "openid"}  # fmt: skip
        answers = at_once(4, lambda _i, body=body: api.call("POST", "/clients", json=body))
        codes = sorted(a.status_code for a in answers)
        assert codes == [201, 400, 400, 400], [a.text for a in answers]


def test_each_sqlite_connection_enforces_foreign_keys_and_queues_its_writers(idp: Any) -> None:
    with idp.app.app_context(), db.engine.connect() as connection:
        dbapi_connection = connection.connection.dbapi_connection
        if db.engine.dialect.name != "sqlite":
            assert not isinstance(dbapi_connection, sqlite3.Connection)
            return
        assert isinstance(dbapi_connection, WriterQueueConnection)
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("foreign_keys", "journal_mode", "busy_timeout")
        }
    busy_timeout = int(BUSY_TIMEOUT * 1000)
    assert pragmas == {"foreign_keys": 1, "journal_mode": "wal", "busy_timeout": busy_timeout}


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
