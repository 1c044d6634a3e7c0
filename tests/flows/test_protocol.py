"""The OpenID Connect surface, driven over HTTP against a live IdP.

Each test walks the real protocol: a browser session through the IdP's pages,
a relying party redeeming codes and checking ID tokens against the JWKS.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey

from .helpers import CALLBACK, Browser, RelyingParty, at_hash, query

PASSWORD = "Correct-Horse-9"


def login_through(
    idp: Any, rp: RelyingParty, browser: Browser, user: Any, **extra: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Authorize, sign in, consent if asked; return (callback params, request)."""
    url, req = rp.authorize_url(**extra)
    page = browser.go(url)
    if 'name="password"' in page.text:
        page = browser.sign_in(page, user.access_number, PASSWORD)
    if 'value="allow"' in page.text:
        page = browser.allow(page)
    assert page.status_code == 302, page.text[:800]
    location = page.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?")
    return query(location), req


# --- the happy path ---------------------------------------------------------------


def test_code_flow_issues_a_valid_id_token_and_userinfo(idp: Any) -> None:
    user = idp.add_user(username="erika", email="erika@example.org", phone_number="+4915100")
    client_id, secret = idp.add_client()
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)

    params, req = login_through(idp, rp, browser, user)
    # RFC 9207 §2: iss in the authorization response; RFC 6749 §4.1.2 state.
    assert params["iss"] == idp.url
    assert params["state"] == req["state"]

    response = rp.redeem(params["code"], req["verifier"])
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert "refresh_token" in tokens  # offline_access was granted

    claims = rp.validate_id_token(tokens["id_token"], req["nonce"])
    for name in ("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "sid"):
        assert name in claims, name
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == "urn:freigabe:acr:pwd"
    assert claims["at_hash"] == at_hash(tokens["access_token"])
    assert claims["sub"] == user.sub
    assert abs(claims["auth_time"] - time.time()) < 60

    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    got = requests.get(f"{idp.url}/userinfo", headers=bearer, timeout=10)
    posted = requests.post(f"{idp.url}/userinfo", headers=bearer, timeout=10)
    assert got.status_code == posted.status_code == 200
    assert got.json() == posted.json()
    assert got.json()["sub"] == user.sub
    assert got.json()["email"] == "erika@example.org"
    assert "phone_number" not in got.json()  # phone scope not requested
    assert idp.events("login") and idp.events("authorization_code_issued")


def test_es256_by_default_and_rs256_on_request(idp: Any) -> None:
    user = idp.add_user()
    for alg in ("ES256", "RS256"):
        client_id, secret = idp.add_client(id_token_signed_response_alg=alg, first_party=True)
        rp = RelyingParty(idp.url, client_id, secret)
        params, req = login_through(idp, rp, Browser(idp.url), user)
        id_token = rp.redeem(params["code"], req["verifier"]).json()["id_token"]
        header = jwt.decode(id_token, _jwks(idp), algorithms=[alg]).header
        assert header["alg"] == alg
        assert header["kid"] in {k["kid"] for k in _jwks_json(idp)["keys"]}


def _jwks_json(idp: Any) -> dict[str, Any]:
    return requests.get(f"{idp.url}/jwks.json", timeout=10).json()  # type: ignore[no-any-return]


def _jwks(idp: Any) -> Any:
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(_jwks_json(idp))


def test_discovery_is_truthful(idp: Any) -> None:
    meta = requests.get(f"{idp.url}/.well-known/openid-configuration", timeout=10)
    assert meta.headers["Cache-Control"].startswith("public")
    doc = meta.json()
    assert doc["issuer"] == idp.url
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    for endpoint in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ):
        assert doc[endpoint].startswith(idp.url + "/")
    # The endpoints exist: each answers something other than 404.
    assert requests.get(doc["jwks_uri"], timeout=10).status_code == 200
    for endpoint in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        assert requests.post(doc[endpoint], timeout=10).status_code in (400, 401)
    assert requests.get(doc["userinfo_endpoint"], timeout=10).status_code == 401
    rfc8414 = requests.get(f"{idp.url}/.well-known/oauth-authorization-server", timeout=10)
    assert rfc8414.json() == doc


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/.well-known/openid-configuration", "application/json"),
        ("/jwks.json", "application/jwk-set+json"),
    ],
)
def test_published_documents_are_cacheable_and_conditional(
    idp: Any, path: str, content_type: str
) -> None:
    url = idp.url + path
    first = requests.get(url, timeout=10)
    assert first.status_code == 200
    assert first.headers["Content-Type"] == content_type
    assert first.headers["Cache-Control"] == "public, max-age=300"
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    # RFC 9110 §13.1.2: the same tag (weak or in a list) is "not modified".
    for tags in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = requests.get(url, headers={"If-None-Match": tags}, timeout=10)
        assert again.status_code == 304, tags
        assert again.content == b"" and again.headers["ETag"] == etag
    changed = requests.get(url, headers={"If-None-Match": '"other"'}, timeout=10)
    assert changed.status_code == 200 and changed.content == first.content
    head = requests.head(url, timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(first.content))
    assert requests.post(url, timeout=10).status_code == 405


def test_a_rotated_key_changes_the_jwks_and_its_etag(idp: Any) -> None:
    before = requests.get(idp.url + "/jwks.json", timeout=10)
    with idp.app.app_context():
        from idp.extensions import commit
        from idp.state import idp as state

        state().keyring.rotate("ES256")
        commit()
    after = requests.get(
        idp.url + "/jwks.json", headers={"If-None-Match": before.headers["ETag"]}, timeout=10
    )
    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    assert len(after.json()["keys"]) == len(before.json()["keys"]) + 1


# --- accounts and login ------------------------------------------------------------


def test_login_by_user_name_e_mail_and_access_number(idp: Any) -> None:
    user = idp.add_user(username="max", email="max@example.org")
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    for identifier in ("max", "MAX@example.org", user.access_number):
        browser = Browser(idp.url)
        page = browser.go(rp.authorize_url()[0])
        page = browser.sign_in(page, identifier, PASSWORD)
        assert page.status_code == 302 and "code=" in page.headers["Location"], identifier


def test_shared_e_mail_asks_for_the_access_number(idp: Any) -> None:
    idp.add_user(email="team@example.org")
    other = idp.add_user(email="team@example.org")
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    page = browser.go(rp.authorize_url()[0])
    page = browser.sign_in(page, "team@example.org", PASSWORD)
    assert page.status_code == 400
    assert "several accounts" in page.text and "access number" in page.text
    page = browser.sign_in(page, other.access_number, PASSWORD)
    assert page.status_code == 302


def test_wrong_password_and_unknown_account_look_the_same(idp: Any) -> None:
    idp.add_user(username="known")
    client_id, secret = idp.add_client()
    rp = RelyingParty(idp.url, client_id, secret)
    texts = []
    for identifier in ("known", "nobody-here"):
        browser = Browser(idp.url)
        page = browser.sign_in(browser.go(rp.authorize_url()[0]), identifier, "wrong-password")
        assert page.status_code == 401
        texts.append(page.text.replace(identifier, "X"))
    assert _error_of(texts[0]) == _error_of(texts[1])


def _error_of(html: str) -> str:
    start = html.index('id="login-error">') + len('id="login-error">')
    return html[start : html.index("<", start)]


def test_failed_logins_are_throttled_per_account(idp: Any) -> None:
    user = idp.add_user(username="target")
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    page = browser.go(rp.authorize_url()[0])
    limit = idp.app.extensions["idp"].settings.login_failures_per_account
    for _ in range(limit):
        page = browser.sign_in(page, "target", "wrong-password")
        assert page.status_code == 401
    # Blocked now, even with the right password, and from another browser.
    other = Browser(idp.url)
    page = other.sign_in(other.go(rp.authorize_url()[0]), user.access_number, PASSWORD)
    assert page.status_code == 429
    assert idp.events("login_throttled")


def test_a_password_hashed_at_another_cost_is_hashed_again_at_login(idp: Any) -> None:
    """An operator who raises (or lowers) the argon2id cost: each stored hash
    follows at the user's next login."""
    from argon2 import PasswordHasher
    from argon2.low_level import Type

    from idp.accounts.models import User
    from idp.extensions import db

    settings = idp.app.extensions["idp"].settings
    user = idp.add_user()
    older = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1, type=Type.ID)
    with idp.app.app_context():
        db.session.get(User, user.id).password_hash = older.hash(PASSWORD)
        db.session.commit()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    login_through(idp, rp, Browser(idp.url), user)
    with idp.app.app_context():
        stored = db.session.get(User, user.id).password_hash
    cost = f"m={settings.password_hash_memory_kib},t={settings.password_hash_time_cost},p=1"
    assert stored.startswith("$argon2id$v=19$" + cost + "$"), stored


def test_failed_logins_are_throttled_per_ip(idp_factory: Any) -> None:
    idp = idp_factory(login_failures_per_ip=3)
    idp.add_user(username="someone")
    client_id, secret = idp.add_client()
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    page = browser.go(rp.authorize_url()[0])
    for n in range(3):
        page = browser.sign_in(page, f"guess-{n}", "wrong-password")
        assert page.status_code == 401
    page = browser.sign_in(page, "someone", PASSWORD)
    assert page.status_code == 429


def test_locked_account_cannot_sign_in(idp: Any) -> None:
    user = idp.add_user(status="locked")
    client_id, secret = idp.add_client()
    browser = Browser(idp.url)
    page = browser.go(RelyingParty(idp.url, client_id, secret).authorize_url()[0])
    page = browser.sign_in(page, user.access_number, PASSWORD)
    assert page.status_code == 403
    assert "locked" in page.text


def test_session_cookie_is_protected_and_rotated_on_login(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    page = browser.go(rp.authorize_url()[0])
    before = browser.session.cookies.get("idp_session")
    raw_cookie = page.headers.get("Set-Cookie", "")
    assert "HttpOnly" in raw_cookie and "SameSite=Lax" in raw_cookie
    assert "Secure" not in raw_cookie  # localhost; Secure everywhere else
    page = browser.sign_in(page, user.access_number, PASSWORD)
    after = browser.session.cookies.get("idp_session")
    assert before and after and before != after
    # The pre-login cookie does not carry the new login.
    stale = Browser(idp.url)
    stale.session.cookies.set("idp_session", before, domain="localhost.local")
    page = stale.go(rp.authorize_url(prompt="none")[0])
    assert query(page.headers["Location"])["error"] == "login_required"


def test_forms_require_the_csrf_token(idp: Any) -> None:
    idp.add_user(username="csrf")
    client_id, secret = idp.add_client()
    browser = Browser(idp.url)
    page = browser.go(RelyingParty(idp.url, client_id, secret).authorize_url()[0])
    action = browser.last.url if browser.last else ""
    response = browser.go(action, "POST", data={"identifier": "csrf", "password": PASSWORD})
    assert response.status_code == 400
    assert "csrf_failed" in response.text
    assert page.status_code == 200


# --- authorization request errors --------------------------------------------------


def test_unknown_client_or_redirect_uri_shows_a_page_and_never_redirects(idp: Any) -> None:
    client_id, secret = idp.add_client()
    rp = RelyingParty(idp.url, client_id, secret)
    cases = [
        rp.authorize_url(client_id="no-such-client")[0],
        rp.authorize_url(redirect_uri="http://localhost:9/elsewhere")[0],
        # RFC 9700 §4.1.1: exact match; no prefix, no trailing slash.
        rp.authorize_url(redirect_uri=CALLBACK + "/")[0],
        rp.authorize_url(redirect_uri=None)[0],
    ]
    for url in cases:
        response = requests.get(url, allow_redirects=False, timeout=10)
        assert response.status_code == 400, url
        assert "Location" not in response.headers
        assert "text/html" in response.headers["Content-Type"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # absent means plain
        ({"scope": "profile"}, "invalid_request"),  # no openid
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
    ],
)
def test_bad_authorization_requests_redirect_with_error_and_iss(
    idp: Any, change: dict[str, str | None], error: str
) -> None:
    client_id, secret = idp.add_client()
    url, req = RelyingParty(idp.url, client_id, secret).authorize_url(**change)  # type: ignore[arg-type]
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:300]
    params = query(response.headers["Location"])
    assert params["error"] == error
    assert params["iss"] == idp.url
    assert params["state"] == req["state"]


def test_public_client_needs_pkce(idp: Any) -> None:
    client_id, _ = idp.add_client(token_endpoint_auth_method="none")
    rp = RelyingParty(idp.url, client_id)
    url, _ = rp.authorize_url(code_challenge=None, code_challenge_method=None)  # type: ignore[arg-type]
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert query(response.headers["Location"])["error"] == "invalid_request"


def test_public_client_completes_the_flow_with_pkce(idp: Any) -> None:
    user = idp.add_user()
    client_id, _ = idp.add_client(token_endpoint_auth_method="none", first_party=True)
    rp = RelyingParty(idp.url, client_id)
    params, req = login_through(idp, rp, Browser(idp.url), user)
    tokens = rp.redeem(params["code"], req["verifier"])
    assert tokens.status_code == 200, tokens.text
    rp.validate_id_token(tokens.json()["id_token"], req["nonce"])


# --- token endpoint -------------------------------------------------------------------


def test_wrong_pkce_verifier_is_invalid_grant(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, _ = login_through(idp, rp, Browser(idp.url), user)
    response = rp.redeem(params["code"], "x" * 50)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_missing_pkce_verifier_is_refused(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, _ = login_through(idp, rp, Browser(idp.url), user)
    response = rp.token(
        grant_type="authorization_code", code=params["code"], redirect_uri=rp.redirect_uri
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_code_replay_is_refused_and_revokes_what_the_code_issued(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, req = login_through(idp, rp, Browser(idp.url), user)
    first = rp.redeem(params["code"], req["verifier"]).json()
    replay = rp.redeem(params["code"], req["verifier"])
    # RFC 6749 §4.1.2: single use; tokens issued from the code are revoked.
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    assert requests.get(f"{idp.url}/userinfo", headers=bearer, timeout=10).status_code == 401
    refreshed = rp.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refreshed.json()["error"] == "invalid_grant"
    assert idp.events("code_replayed")


def test_a_code_whose_family_a_replay_revoked_first_issues_nothing(idp: Any) -> None:
    """A replay racing the code's redemption revokes the family before the
    family's row exists: the revocation makes the row, revoked, and the
    redemption then finds it so (invalid_grant, no token stored)."""
    from idp.extensions import commit, db
    from idp.oidc.models import RefreshToken, TokenFamily
    from idp.oidc.tokens import CODES, revoke_family
    from idp.state import idp as state

    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, req = login_through(idp, rp, Browser(idp.url), user)
    with idp.app.app_context():
        digest = state().digester.digest(params["code"], purpose="authorization-code")
        record = CODES.get(digest)
        assert record is not None
        revoke_family(
            record.family_id, reason="code_replayed", client_id=client_id, user_id=user.id
        )
        commit()

    refused = rp.redeem(params["code"], req["verifier"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    with idp.app.app_context():
        family = db.session.get(TokenFamily, record.family_id)
        assert family is not None and family.revoked_at is not None
        assert db.session.query(RefreshToken).filter_by(family_id=record.family_id).count() == 0


def test_code_is_bound_to_its_redirect_uri_and_client(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    other_id, other_secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, req = login_through(idp, rp, Browser(idp.url), user)
    stolen = RelyingParty(idp.url, other_id, other_secret).redeem(params["code"], req["verifier"])
    assert stolen.json()["error"] == "invalid_grant"
    params, req = login_through(idp, rp, Browser(idp.url), user)
    wrong_uri = rp.token(
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=CALLBACK + "x",
        code_verifier=req["verifier"],
    )
    assert wrong_uri.json()["error"] == "invalid_grant"


def test_refresh_tokens_rotate_and_reuse_revokes_the_family(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, req = login_through(idp, rp, Browser(idp.url), user)
    first = rp.redeem(params["code"], req["verifier"]).json()

    second = rp.token(grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]

    # RFC 9700 §4.14.2: the old one again means theft; the family dies.
    reuse = rp.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    later = rp.token(grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert later.json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {second['access_token']}"}
    assert requests.get(f"{idp.url}/userinfo", headers=bearer, timeout=10).status_code == 401
    assert idp.events("refresh_token_reused")


def test_refresh_token_belongs_to_its_client(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    other_id, other_secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, req = login_through(idp, rp, Browser(idp.url), user)
    tokens = rp.redeem(params["code"], req["verifier"]).json()
    other = RelyingParty(idp.url, other_id, other_secret)
    stolen = other.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert stolen.json()["error"] == "invalid_grant"


def test_no_refresh_token_without_offline_access(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, req = login_through(idp, rp, Browser(idp.url), user, scope="openid email")
    tokens = rp.redeem(params["code"], req["verifier"]).json()
    assert "refresh_token" not in tokens


def test_bad_client_authentication_is_invalid_client(idp: Any) -> None:
    client_id, secret = idp.add_client()
    wrong = RelyingParty(idp.url, client_id, "not-the-secret")
    response = wrong.token(
        grant_type="authorization_code", code="x", redirect_uri=CALLBACK, code_verifier="y" * 43
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    # A confidential client may not skip authentication.
    anonymous = requests.post(
        f"{idp.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "code_verifier": "y" * 43,
        },
        timeout=10,
    )
    assert anonymous.json()["error"] == "invalid_client"
    # The registered method only: this client is client_secret_basic.
    posted = requests.post(
        f"{idp.url}/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=10,
    )
    assert posted.json()["error"] == "invalid_client"


def test_client_secret_post(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(
        token_endpoint_auth_method="client_secret_post", first_party=True
    )
    rp = RelyingParty(idp.url, client_id, secret)
    params, req = login_through(idp, rp, Browser(idp.url), user)
    response = requests.post(
        f"{idp.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uri": CALLBACK,
            "code_verifier": req["verifier"],
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text


def _client_assertion(key: ECKey, client_id: str, audience: str, jti: str | None = None) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": jti or uuid.uuid4().hex,
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def test_private_key_jwt_and_assertion_replay(idp: Any) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    jwks = {"keys": [key.as_dict(private=False)]}
    client_id, _ = idp.add_client(
        token_endpoint_auth_method="private_key_jwt", jwks=jwks, grant_types=["client_credentials"]
    )
    assertion = _client_assertion(key, client_id, f"{idp.url}/token")
    form = {
        "grant_type": "client_credentials",
        "scope": "openid",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    ok = requests.post(f"{idp.url}/token", data=form, timeout=10)
    assert ok.status_code == 200, ok.text
    replayed = requests.post(f"{idp.url}/token", data=form, timeout=10)
    assert replayed.json()["error"] == "invalid_client"
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    form["client_assertion"] = _client_assertion(stranger, client_id, f"{idp.url}/token")
    forged = requests.post(f"{idp.url}/token", data=form, timeout=10)
    assert forged.json()["error"] == "invalid_client"


def test_client_credentials_only_for_clients_allowed_it(idp: Any) -> None:
    allowed_id, allowed_secret = idp.add_client(grant_types=["client_credentials"])
    ok = RelyingParty(idp.url, allowed_id, allowed_secret).token(grant_type="client_credentials")
    assert ok.status_code == 200 and "refresh_token" not in ok.json()
    other_id, other_secret = idp.add_client()
    refused = RelyingParty(idp.url, other_id, other_secret).token(grant_type="client_credentials")
    assert refused.json()["error"] == "unauthorized_client"


def test_revocation_and_introspection(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, req = login_through(idp, rp, Browser(idp.url), user)
    tokens = rp.redeem(params["code"], req["verifier"]).json()

    def introspect(token: str, auth: tuple[str, str] = (client_id, secret)) -> Any:
        return requests.post(f"{idp.url}/introspect", data={"token": token}, auth=auth, timeout=10)

    active = introspect(tokens["access_token"]).json()
    assert active["active"] is True and active["sub"] == user.sub
    assert active["client_id"] == client_id
    other_id, other_secret = idp.add_client()
    assert introspect(tokens["access_token"], (other_id, other_secret)).json() == {"active": False}
    assert introspect(tokens["access_token"], (client_id, "wrong")).status_code == 401

    # RFC 7009 §2.1: revoking the refresh token ends the grant's access tokens.
    revoked = requests.post(
        f"{idp.url}/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(client_id, secret),
        timeout=10,
    )
    assert revoked.status_code == 200
    assert introspect(tokens["access_token"]).json() == {"active": False}
    assert introspect(tokens["refresh_token"]).json() == {"active": False}
    # RFC 7009 §2.2: unknown tokens are fine too.
    unknown = requests.post(
        f"{idp.url}/revoke", data={"token": "nothing"}, auth=(client_id, secret), timeout=10
    )
    assert unknown.status_code == 200


# --- prompt, max_age, consent ----------------------------------------------------------


def test_prompt_none_without_session_is_login_required(idp: Any) -> None:
    client_id, secret = idp.add_client()
    url, req = RelyingParty(idp.url, client_id, secret).authorize_url(prompt="none")
    response = requests.get(url, allow_redirects=False, timeout=10)
    params = query(response.headers["Location"])
    assert params["error"] == "login_required"
    assert params["state"] == req["state"] and params["iss"] == idp.url


def test_prompt_none_with_session(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client()
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    # Signed in, but this client has no consent yet.
    browser.sign_in(browser.go(f"{idp.url}/login"), user.access_number, PASSWORD)
    page = browser.go(rp.authorize_url(prompt="none")[0])
    assert query(page.headers["Location"])["error"] == "consent_required"
    login_through(idp, rp, browser, user)  # consents
    page = browser.go(rp.authorize_url(prompt="none")[0])
    assert "code" in query(page.headers["Location"])


def test_max_age_forces_a_new_login(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    params, req = login_through(idp, rp, browser, user)
    first = rp.validate_id_token(
        rp.redeem(params["code"], req["verifier"]).json()["id_token"], req["nonce"]
    )
    # Session exists: no login page without max_age.
    page = browser.go(rp.authorize_url()[0])
    assert page.status_code == 302
    # OIDC Core §3.1.2.1: max_age=0 means authenticate again.
    page = browser.go(rp.authorize_url(max_age="0")[0])
    assert page.status_code == 200 and 'name="password"' in page.text
    url, req = rp.authorize_url(max_age="0")
    page = browser.sign_in(browser.go(url), user.access_number, PASSWORD)
    params = query(page.headers["Location"])
    claims = rp.validate_id_token(
        rp.redeem(params["code"], req["verifier"]).json()["id_token"], req["nonce"]
    )
    assert claims["auth_time"] >= first["auth_time"]
    assert claims["sid"] != first["sid"]


def test_prompt_login_forces_a_new_login(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    login_through(idp, rp, browser, user)
    page = browser.go(rp.authorize_url(prompt="login")[0])
    assert 'name="password"' in page.text


def test_login_hint_fills_the_form(idp: Any) -> None:
    client_id, secret = idp.add_client()
    page = Browser(idp.url).go(
        RelyingParty(idp.url, client_id, secret).authorize_url(login_hint="hint@example.org")[0]
    )
    assert 'value="hint@example.org"' in page.text


def test_consent_is_remembered_and_prompt_consent_asks_again(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client()
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    login_through(idp, rp, browser, user)
    page = browser.go(rp.authorize_url()[0])
    assert page.status_code == 302 and "code=" in page.headers["Location"]
    page = browser.go(rp.authorize_url(prompt="consent")[0])
    assert 'value="allow"' in page.text
    # More scopes than consented: asked again.
    page = browser.go(rp.authorize_url(scope="openid profile email phone")[0])
    assert 'value="allow"' in page.text


def test_denied_consent_returns_access_denied(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client()
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    url, req = rp.authorize_url()
    page = browser.sign_in(browser.go(url), user.access_number, PASSWORD)
    page = browser.submit(page, "/authorize/consent", decision="deny")
    params = query(page.headers["Location"])
    assert params["error"] == "access_denied" and params["state"] == req["state"]


def test_first_party_client_skips_consent(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    browser = Browser(idp.url)
    page = browser.go(RelyingParty(idp.url, client_id, secret).authorize_url()[0])
    page = browser.sign_in(page, user.access_number, PASSWORD)
    assert page.status_code == 302 and "code=" in page.headers["Location"]


def test_transaction_cannot_be_resumed_from_another_browser(idp: Any) -> None:
    client_id, secret = idp.add_client()
    browser = Browser(idp.url)
    browser.go(RelyingParty(idp.url, client_id, secret).authorize_url()[0])
    login_url = browser.last.url if browser.last else ""
    assert "tx=" in login_url
    stranger = requests.get(login_url, timeout=10)
    assert stranger.status_code == 400 and "login_expired" in stranger.text


def test_acr_values_are_answered_with_the_acr_achieved(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, req = login_through(idp, rp, Browser(idp.url), user, acr_values="urn:freigabe:acr:mfa")
    claims = rp.validate_id_token(
        rp.redeem(params["code"], req["verifier"]).json()["id_token"], req["nonce"]
    )
    assert claims["acr"] == "urn:freigabe:acr:pwd"


def test_client_requiring_mfa_without_a_device(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True, require_mfa=True)
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    # A page that offers enrolment; nothing is issued.
    page = browser.sign_in(browser.go(rp.authorize_url()[0]), user.access_number, PASSWORD)
    assert page.status_code == 403 and 'id="no-device"' in page.text
    # OIDC Core §3.1.2.6: prompt=none cannot show that page.
    page = browser.go(rp.authorize_url(prompt="none")[0])
    assert query(page.headers["Location"])["error"] == "interaction_required"


# --- logout ------------------------------------------------------------------------------


def test_rp_initiated_logout(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(
        first_party=True, post_logout_redirect_uris=["http://localhost:9/bye"]
    )
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    params, req = login_through(idp, rp, browser, user)
    id_token = rp.redeem(params["code"], req["verifier"]).json()["id_token"]

    # An unregistered post-logout URI is never followed.
    page = browser.go(
        f"{idp.url}/logout",
        params={"id_token_hint": id_token, "post_logout_redirect_uri": "http://localhost:9/evil"},
    )
    assert page.status_code == 200 and "Location" not in page.headers
    params, req = login_through(idp, rp, browser, user)
    id_token = rp.redeem(params["code"], req["verifier"]).json()["id_token"]

    page = browser.go(
        f"{idp.url}/logout",
        params={
            "id_token_hint": id_token,
            "post_logout_redirect_uri": "http://localhost:9/bye",
            "state": "s1",
        },
    )
    assert page.status_code == 302
    assert page.headers["Location"] == "http://localhost:9/bye?state=s1"
    page = browser.go(rp.authorize_url(prompt="none")[0])
    assert query(page.headers["Location"])["error"] == "login_required"
    assert idp.events("logout")


def test_logout_without_id_token_hint_asks_first(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    login_through(idp, rp, browser, user)
    page = browser.go(f"{idp.url}/logout")
    assert 'id="confirm-logout"' in page.text
    # Still signed in until confirmed.
    assert "code=" in browser.go(rp.authorize_url(prompt="none")[0]).headers["Location"]
    page = browser.submit(page, "/logout", confirm="yes")
    assert page.status_code == 200
    assert (
        query(browser.go(rp.authorize_url(prompt="none")[0]).headers["Location"])["error"]
        == "login_required"
    )


# --- keys ---------------------------------------------------------------------------------


def test_rotated_key_stays_published_until_its_tokens_expire(idp: Any) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, req = login_through(idp, rp, Browser(idp.url), user)
    old_token = rp.redeem(params["code"], req["verifier"]).json()["id_token"]
    old_kid = jwt.decode(old_token, _jwks(idp), algorithms=["ES256"]).header["kid"]

    keyring = idp.app.extensions["idp"].keyring
    from idp.extensions import commit

    with idp.app.app_context():
        keyring.rotate("ES256")
        commit()
    idp.app.extensions["idp"].keyring.invalidate()
    kids = {k["kid"] for k in _jwks_json(idp)["keys"]}
    assert old_kid in kids and len(kids) == 3  # new ES256, retiring ES256, RS256
    rp.validate_id_token(old_token, req["nonce"])  # still verifies

    params, req = login_through(idp, rp, Browser(idp.url), user)
    new_token = rp.redeem(params["code"], req["verifier"]).json()["id_token"]
    assert jwt.decode(new_token, _jwks(idp), algorithms=["ES256"]).header["kid"] != old_kid

    from datetime import timedelta

    from idp.extensions import utcnow

    with idp.app.app_context():
        keyring.retire_expired(now=utcnow() + timedelta(days=1))
        commit()
    assert old_kid not in {k["kid"] for k in _jwks_json(idp)["keys"]}


def test_private_keys_are_encrypted_at_rest(idp: Any) -> None:
    from sqlalchemy import select

    from idp.extensions import db
    from idp.oidc.models import SigningKey

    requests.get(f"{idp.url}/jwks.json", timeout=10)
    with idp.app.app_context():
        rows = db.session.scalars(select(SigningKey)).all()
        assert rows
        for row in rows:
            assert b"PRIVATE KEY" not in row.private_key_encrypted
            assert "d" not in row.public_jwk
