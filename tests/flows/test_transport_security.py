"""With an https issuer: a "__Host-" session cookie and Strict-Transport-Security.

The app is the real one from create_app() on this test's backend, driven with
Flask's test client at the issuer's https URL (no TLS server needed: the
cookie and headers are the app's own). The http://localhost issuer of the demo
and of the other tests gets neither.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

from idp.app import create_app

from .conftest import PASSWORD

ISSUER = "https://login.example.org"
ONE_YEAR = 31_536_000


def app_for(backend_overrides: dict[str, Any], issuer: str = ISSUER, **settings: Any) -> Flask:
    return create_app(
        {
            "issuer": issuer,
            "secret_key": secrets.token_urlsafe(48),
            "key_encryption_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            **backend_overrides,
            **settings,
        }
    )


def session_cookie(response: TestResponse) -> str:
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if "idp_session=" in c]
    return cookie


def cookie_attributes(cookie: str) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for part in cookie.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        attributes[name.lower()] = value
    return attributes


def add_user(app: Flask) -> str:
    from idp.accounts.service import create_user
    from idp.extensions import db

    with app.app_context():
        user = create_user(app.extensions["idp"].passwords, password=PASSWORD)
        db.session.commit()
        return user.access_number


def every_kind_of_response(app: Flask, base_url: str) -> list[TestResponse]:
    """A page, a redirect, JSON, a static file, a 404, an OAuth error."""
    client = app.test_client()
    responses = [
        client.get("/login", base_url=base_url),
        client.get("/", base_url=base_url),
        client.get("/.well-known/openid-configuration", base_url=base_url),
        client.get("/static/style.css", base_url=base_url),
        client.get("/no-such-page", base_url=base_url),
        client.post("/token", data={"grant_type": "nonsense"}, base_url=base_url),
    ]
    for response in responses:
        response.close()  # the static file's
    return responses


def stop(app: Flask) -> None:
    from idp.extensions import dispose_pools

    with app.app_context():
        dispose_pools()
    app.extensions["idp"].store.close()


def test_https_issuer_has_a_host_cookie_and_hsts_on_every_response_http_neither(
    backend_overrides: dict[str, Any],
) -> None:
    app = app_for(backend_overrides)
    try:
        client = app.test_client()
        page = client.get("/login", base_url=ISSUER)
        assert page.status_code == 200
        cookie = session_cookie(page)
        # RFC 6265bis §4.1.3.2: "__Host-" means Secure, Path=/ and no Domain.
        assert cookie.startswith("__Host-idp_session=")
        attributes = cookie_attributes(cookie)
        assert "secure" in attributes and attributes["path"] == "/"
        assert "domain" not in attributes
        assert "httponly" in attributes and attributes["samesite"] == "Lax"

        for response in every_kind_of_response(app, ISSUER):
            assert response.headers["Strict-Transport-Security"] == f"max-age={ONE_YEAR}", (
                response.request.path,
                response.status_code,
            )

        # The session works under its new name: the login form's CSRF token
        # (kept in the cookie) is accepted, and the browser is signed in.
        access_number = add_user(app)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        signed_in = client.post(
            "/login",
            base_url=ISSUER,
            # Flask-WTF checks the Referer of https requests.
            headers={"Referer": f"{ISSUER}/login"},
            data={"csrf_token": csrf.group(1), "identifier": access_number, "password": PASSWORD},
        )
        assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/account"
        assert session_cookie(signed_in).startswith("__Host-idp_session=")
        account = client.get("/account", base_url=ISSUER)
        assert account.status_code == 200 and access_number in account.text
    finally:
        stop(app)

    # The http://localhost of the demo has neither: a Secure cookie would not
    # come back from http://localhost.
    issuer = "http://localhost:5000"
    app = app_for(backend_overrides, issuer=issuer)
    try:
        for response in every_kind_of_response(app, issuer):
            assert "Strict-Transport-Security" not in response.headers
        cookie = session_cookie(app.test_client().get("/login", base_url=issuer))
        assert cookie.startswith("idp_session=")
        assert "secure" not in cookie_attributes(cookie)
    finally:
        stop(app)


def test_hsts_can_be_left_to_the_proxy(backend_overrides: dict[str, Any]) -> None:
    app = app_for(backend_overrides, hsts_max_age=0)
    try:
        for response in every_kind_of_response(app, ISSUER):
            assert "Strict-Transport-Security" not in response.headers
        # The cookie stays a "__Host-" cookie.
        page = app.test_client().get("/login", base_url=ISSUER)
        assert session_cookie(page).startswith("__Host-idp_session=")
    finally:
        stop(app)
