"""FinanceCloud, the demo relying party, against a live IdP.

A ``requests.Session`` plays the browser through both servers; the RP does the
protocol with Authlib, and the test checks what it shows against the IdP's
published keys on its own (joserfc), not against the RP's word.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from clients.demo_rp import create_app

from ..support.ports import free_port
from .conftest import PASSWORD, LiveRp
from .helpers import form_fields, query


def browser_session() -> tuple[requests.Session, list[str]]:
    """A browser, and every URL it has been sent to."""
    browser = requests.Session()
    visited: list[str] = []
    browser.hooks["response"].append(lambda response, *args, **kwargs: visited.append(response.url))
    return browser, visited


def post_form(
    browser: requests.Session, page: requests.Response, **values: str
) -> requests.Response:
    """Submit the page's first form, as a browser would, following redirects."""
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action is not None, page.text[:500]
    data = {**form_fields(page.text), **values}
    url = urljoin(page.url, html.unescape(action.group(1)))
    return browser.post(url, data=data, timeout=30)


def sign_in(browser: requests.Session, rp: LiveRp, user: Any, **params: str) -> requests.Response:
    """Press "Sign in with Freigabe", sign in at the IdP, allow if asked."""
    page = browser.get(rp.url + "/login", params=params, timeout=30)
    if 'name="password"' in page.text:
        page = post_form(browser, page, identifier=user.access_number, password=PASSWORD)
    if 'value="allow"' in page.text:
        page = post_form(browser, page, decision="allow")
    return page


def pre(page: requests.Response, element_id: str) -> str:
    found = re.search(rf'<pre id="{element_id}">(.*?)</pre>', page.text, re.DOTALL)
    assert found is not None, f"no #{element_id} in {page.url}: {page.text[:800]}"
    return html.unescape(found.group(1))


def error_code(page: requests.Response) -> str:
    found = re.search(r'<code id="error-code">([^<]*)</code>', page.text)
    assert found is not None, page.text[:800]
    return html.unescape(found.group(1))


def readable(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def verify_id_token(idp: Any, rp: LiveRp, id_token: str) -> dict[str, Any]:
    """OIDC Core §3.1.3.7, independently of the RP: signature against the JWKS,
    iss, aud, exp, iat."""
    jwks = requests.get(f"{idp.url}/jwks.json", timeout=10).json()
    token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["ES256", "RS256"])
    claims = dict(token.claims)
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": idp.url},
        aud={"essential": True, "value": rp.client_id},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(claims)
    return claims


# --- sign-in -----------------------------------------------------------------------


def test_sign_in_shows_the_validated_claims_and_userinfo(idp: Any, rp: LiveRp) -> None:
    user = idp.add_user(username="erika", email="erika@example.org", phone_number="+4915100000")
    browser, visited = browser_session()

    start = browser.get(rp.url + "/", timeout=10)
    assert start.status_code == 200
    assert "<title>FinanceCloud</title>" in start.text
    assert 'href="/login"' in start.text and "Sign in with Freigabe" in start.text

    page = sign_in(browser, rp, user)
    assert page.status_code == 200, page.text[:800]
    assert page.url == rp.url + "/me"
    assert page.headers["Cache-Control"] == "no-store"

    # The authorization request: PKCE S256, state, nonce (RFC 9700 §2.1.1).
    authorize = query(next(u for u in visited if u.startswith(idp.url + "/authorize?")))
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["code_challenge"] and authorize["state"] and authorize["nonce"]
    assert authorize["redirect_uri"] == rp.url + "/callback"
    assert set(authorize["scope"].split()) == {
        "openid",
        "profile",
        "email",
        "phone",
        "offline_access",
    }
    # RFC 9207: the response came back with iss, which the RP checked.
    callback = query(next(u for u in visited if u.startswith(rp.url + "/callback?")))
    assert callback["iss"] == idp.url
    assert callback["state"] == authorize["state"]

    shown = json.loads(pre(page, "id-token-claims"))
    assert shown["sub"] == user.sub
    assert shown["amr"] == ["pwd"]
    assert shown["acr"] == "urn:freigabe:acr:pwd"
    assert abs(shown["auth_time"] - time.time()) < 60
    assert shown["nonce"] == authorize["nonce"]
    assert f'<td id="auth-time">{readable(shown["auth_time"])}</td>' in page.text

    # The raw ID token on the page verifies against the JWKS and says the same.
    assert verify_id_token(idp, rp, pre(page, "id-token")) == shown

    userinfo = json.loads(pre(page, "userinfo"))
    assert userinfo["sub"] == user.sub
    assert userinfo["email"] == "erika@example.org"
    assert userinfo["phone_number"] == "+4915100000"

    # The cookie carries keys only; the tokens stay on the server.
    cookie = browser.cookies.get("financecloud_session")
    assert cookie is not None and len(cookie) < 400
    held = rp.tokens(browser)
    assert held is not None and held.refresh_token and held.access_token not in cookie
    assert idp.events("login")


def test_public_client_completes_the_flow(idp: Any, rp_factory: Callable[..., LiveRp]) -> None:
    rp = rp_factory(public=True, first_party=True)
    assert rp.client_secret is None
    user = idp.add_user(email="max@example.org")
    browser, visited = browser_session()

    page = sign_in(browser, rp, user)
    assert page.url == rp.url + "/me", page.text[:800]
    assert not any("/authorize/consent" in u for u in visited)  # first party: no consent
    shown = json.loads(pre(page, "id-token-claims"))
    assert shown["sub"] == user.sub
    assert verify_id_token(idp, rp, pre(page, "id-token")) == shown
    assert json.loads(pre(page, "userinfo"))["email"] == "max@example.org"


def test_login_forwards_the_request_parameters(idp: Any, rp_factory: Callable[..., LiveRp]) -> None:
    rp = rp_factory(ACR_VALUES="urn:freigabe:acr:pwd")
    browser, _ = browser_session()

    response = browser.get(
        rp.url + "/login",
        params={"prompt": "login", "max_age": "0", "login_hint": "erika", "ui_locales": "de"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith(idp.url + "/authorize?")
    sent = query(response.headers["Location"])
    assert sent["prompt"] == "login" and sent["max_age"] == "0"
    assert sent["login_hint"] == "erika" and sent["ui_locales"] == "de"
    assert sent["acr_values"] == "urn:freigabe:acr:pwd"  # the configured default
    assert sent["client_id"] == rp.client_id


# --- errors and the callback's own checks -------------------------------------------


def test_error_response_shows_the_error_page(idp: Any, rp: LiveRp) -> None:
    browser, _ = browser_session()

    page = browser.get(rp.url + "/login", params={"prompt": "none"}, timeout=30)
    assert page.url.startswith(rp.url + "/callback?")
    assert page.status_code == 400
    assert error_code(page) == "login_required"
    assert "not signed in at Freigabe" in page.text


def test_callback_refuses_a_wrong_or_missing_iss_and_an_unknown_state(idp: Any, rp: LiveRp) -> None:
    browser, _ = browser_session()
    started = browser.get(rp.url + "/login", allow_redirects=False, timeout=10)
    state = query(started.headers["Location"])["state"]

    def callback(**params: str) -> requests.Response:
        return browser.get(rp.url + "/callback", params=params, timeout=10)

    # RFC 9207 §2.4: a response naming another issuer is a mix-up attack.
    page = callback(code="x", state=state, iss="https://attacker.example")
    assert (page.status_code, error_code(page)) == (400, "issuer_mismatch")
    # The IdP advertises authorization_response_iss_parameter_supported.
    page = callback(code="x", state=state)
    assert (page.status_code, error_code(page)) == (400, "missing_iss")
    # RFC 6749 §10.12: only answers to requests this browser started.
    page = callback(code="x", state="not-ours", iss=idp.url)
    assert (page.status_code, error_code(page)) == (400, "invalid_state")
    page = callback(error="access_denied", state="not-ours", iss=idp.url)
    assert (page.status_code, error_code(page)) == (400, "invalid_state")


def test_rp_starts_before_the_idp_and_says_so_when_it_is_down() -> None:
    app = create_app({"ISSUER": f"http://localhost:{free_port()}", "SECRET_KEY": "k" * 32})
    client = app.test_client()

    assert client.get("/").status_code == 200
    response = client.get("/login")
    assert response.status_code == 502
    assert b'<code id="error-code">idp_unreachable</code>' in response.data


# --- refresh -----------------------------------------------------------------------


def test_refresh_rotates_and_the_old_refresh_token_is_refused(idp: Any, rp: LiveRp) -> None:
    user = idp.add_user(email="erika@example.org")
    browser, _ = browser_session()
    me = sign_in(browser, rp, user)
    before = rp.tokens(browser)
    assert before is not None and before.refresh_token

    page = browser.post(rp.url + "/refresh", data=form_fields(me.text), timeout=30)
    assert page.url == rp.url + "/me" and page.status_code == 200
    assert "Tokens refreshed" in page.text and "refresh token was rotated" in page.text
    after = rp.tokens(browser)
    assert after is not None and after.refresh_token
    assert after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token
    assert after.expires_at is not None and after.expires_at > time.time()
    assert f'<td id="access-token-expires">{readable(after.expires_at)}</td>' in page.text
    assert json.loads(pre(page, "userinfo"))["sub"] == user.sub  # with the new access token

    # RFC 9700 §4.14.2: the replaced refresh token is worthless, and using it
    # again revokes the family, the RP's new refresh token included.
    replay = requests.post(
        f"{idp.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": before.refresh_token},
        auth=(rp.client_id, rp.client_secret or ""),
        timeout=10,
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert idp.events("refresh_token_reused")

    page = browser.post(rp.url + "/refresh", data=form_fields(me.text), timeout=30)
    assert (page.status_code, error_code(page)) == (400, "invalid_grant")
    assert browser.get(rp.url + "/me", timeout=10).url == rp.url + "/"  # sign-in dropped


def test_refresh_and_sign_out_need_the_csrf_token(idp: Any, rp: LiveRp) -> None:
    user = idp.add_user(email="erika@example.org")
    browser, _ = browser_session()
    sign_in(browser, rp, user)

    for path in ("/refresh", "/logout"):
        page = browser.post(rp.url + path, data={"csrf_token": "forged"}, timeout=10)
        assert (page.status_code, error_code(page)) == (400, "invalid_csrf_token")
    assert rp.tokens(browser) is not None


# --- sign-out ----------------------------------------------------------------------


def test_sign_out_goes_through_the_idp_and_back(idp: Any, rp: LiveRp) -> None:
    user = idp.add_user(email="erika@example.org")
    browser, visited = browser_session()
    me = sign_in(browser, rp, user)
    id_token = pre(me, "id-token")

    # OIDC RP-Initiated Logout 1.0 §2: the request the RP sends.
    response = browser.post(
        rp.url + "/logout", data=form_fields(me.text), allow_redirects=False, timeout=10
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(idp.url + "/logout?")
    sent = query(location)
    assert sent["id_token_hint"] == id_token
    assert sent["post_logout_redirect_uri"] == rp.url + "/"
    assert sent["client_id"] == rp.client_id
    assert sent["state"]
    assert rp.tokens(browser) is None  # the local session ends first

    # With a valid id_token_hint the IdP ends its session without asking (§6)
    # and sends the browser back to the registered URI with the state (§3).
    visited.clear()
    page = browser.get(location, timeout=30)
    assert visited[0].startswith(idp.url + "/logout?")
    assert page.url == f"{rp.url}/?state={sent['state']}", page.text[:800]
    assert 'id="signed-out"' in page.text
    assert idp.events("logout")

    # Signed out at the IdP too: a silent sign-in now needs a login.
    page = browser.get(rp.url + "/login", params={"prompt": "none"}, timeout=30)
    assert error_code(page) == "login_required"
    assert browser.get(rp.url + "/me", timeout=10).url == rp.url + "/"
