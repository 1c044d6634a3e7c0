"""OpenID Connect Back-Channel Logout 1.0 against a live IdP.

A user signs in at FinanceCloud (the demo RP, registered with its
/backchannel-logout URI) and the IdP session then ends: signed out through an
RP (RP-initiated logout), on the account page, by an administrator locking
the account or forcing a password reset, or by another user signing in on
the same browser. The RP receives a Logout Token, checks it itself (joserfc,
against the IdP's JWKS) and drops its sign-in. Also: the token's exact form,
checked here independently of the RP; clients without the URI get nothing;
a dead or slow client neither breaks nor holds up the sign-out and is
audited; the RP refuses forged, replayed, wrong-audience and other bad
tokens; the URI's validation; discovery; the admin API, CLI and pages and
dynamic registration accept the fields.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from tests.support.logout_receiver import LogoutReceiver

from ..support.ports import free_port
from ..support.waiting import wait_until
from .conftest import PASSWORD, LiveRp
from .helpers import Browser, RelyingParty, form_fields
from .test_admin_api import automation
from .test_admin_pages import admin_session, admin_with_device, by_id, client_form, get, send
from .test_client_registration import METADATA, initial_token, register
from .test_demo_rp import browser_session, post_form, pre, sign_in
from .test_protocol import login_through

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


# --- helpers ---------------------------------------------------------------------------


@pytest.fixture
def receivers() -> Iterator[Callable[..., LogoutReceiver]]:
    started: list[LogoutReceiver] = []

    def start(**options: Any) -> LogoutReceiver:
        receiver = LogoutReceiver(**options)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def logouts(idp: Any, client_id: str, count: int = 1, timeout: float = 20) -> list[Any]:
    """The ``backchannel_logout`` audit events of ``client_id``, once there
    are ``count`` of them (delivery runs in the background)."""

    def found() -> list[Any]:
        events = [e for e in idp.events("backchannel_logout") if e.client_id == client_id]
        return events if len(events) >= count else []

    return wait_until(found, timeout=timeout, what=f"a back-channel logout for {client_id}")


def signed_in_at(browser: requests.Session, rp: LiveRp) -> bool:
    """Whether the RP still holds this browser's sign-in (and shows /me)."""
    held = rp.tokens(browser) is not None
    page = browser.get(rp.url + "/me", timeout=10)
    assert held == (page.url == rp.url + "/me"), page.url
    return held


def sid_of(page: requests.Response) -> str:
    sid: str = json.loads(pre(page, "id-token-claims"))["sid"]
    return sid


def sign_out_on_the_account_page(idp: Any, browser: requests.Session) -> None:
    account = browser.get(idp.url + "/account", timeout=10)
    assert account.status_code == 200 and "/account/logout" in account.text
    page = browser.post(
        idp.url + "/account/logout",
        data={"csrf_token": form_fields(account.text)["csrf_token"]},
        timeout=10,
    )
    assert page.status_code == 200


def sign_out_through_the_rp(rp: LiveRp, browser: requests.Session, me: requests.Response) -> None:
    """FinanceCloud's "Sign out": RP-initiated logout, back to the RP."""
    page = post_form(browser, me)
    assert page.url.startswith(rp.url + "/?state="), page.url
    assert 'id="signed-out"' in page.text


def verified_claims(idp: Any, token: str) -> dict[str, Any]:
    """A Logout Token's claims, its signature checked against the JWKS."""
    jwks = KeySet.import_key_set(requests.get(f"{idp.url}/jwks.json", timeout=10).json())
    return dict(jwt.decode(token, jwks, algorithms=["ES256", "RS256"]).claims)


def signing_key(idp: Any, alg: str = "ES256") -> Any:
    with idp.app.app_context():
        return idp.app.extensions["idp"].keyring.signing_key(alg)


def sign(key: Any, claims: dict[str, Any], **header: Any) -> str:
    header = {"alg": key.alg, "kid": key.kid, "typ": "logout+jwt", **header}
    return jwt.encode(header, claims, key.key)


def logout_claims(idp: Any, rp: LiveRp, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": idp.url,
        "aud": rp.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": f"jti-{time.monotonic_ns()}",
        "sub": "someone",
        "sid": "some-session",
        "events": {LOGOUT_EVENT: {}},
        **changes,
    }
    return {k: v for k, v in claims.items() if v is not None}


def post_logout_token(rp: LiveRp, token: str | None) -> requests.Response:
    data = {"logout_token": token} if token is not None else {}
    return requests.post(rp.url + "/backchannel-logout", data=data, timeout=10)


# --- the RP is told -----------------------------------------------------------------------


def test_signing_out_at_the_idp_signs_the_user_out_of_every_rp(
    idp: Any, rp_factory: Callable[..., LiveRp], receivers: Callable[..., LogoutReceiver]
) -> None:
    rp = rp_factory(backchannel=True)
    receiver = receivers()
    other_id, other_secret = idp.add_client(first_party=True, backchannel_logout_uri=receiver.url)
    other = RelyingParty(idp.url, other_id, other_secret)
    user = idp.add_user(email="erika@example.org")
    browser, _ = browser_session()
    me = sign_in(browser, rp, user)
    sid = sid_of(me)
    # Another client signs in with the same IdP session (no password).
    login_through(idp, other, Browser(idp.url, session=browser), user)
    assert signed_in_at(browser, rp)

    # RP-Initiated Logout at the IdP (with FinanceCloud's ID token as hint;
    # FinanceCloud itself is not asked).
    page = browser.get(f"{idp.url}/logout", params={"id_token_hint": pre(me, "id-token")})
    assert page.status_code == 200 and page.url.startswith(idp.url + "/logout")

    # Back-Channel Logout §2.7: the RP ends its sign-in on the token.
    [event] = logouts(idp, rp.client_id)
    assert event.user_id == user.id
    assert event.detail["outcome"] == "delivered" and event.detail["status"] == 200
    assert event.detail["sid"] == sid and event.detail["reason"] == "rp_initiated_logout"
    assert not signed_in_at(browser, rp)
    # The other client was told too, about the same session.
    token = receiver.next().form["logout_token"][0]
    assert verified_claims(idp, token)["aud"] == other_id
    assert verified_claims(idp, token)["sid"] == sid
    assert logouts(idp, other_id)[0].detail["outcome"] == "delivered"


def test_signing_out_on_the_account_page(idp: Any, rp_factory: Callable[..., LiveRp]) -> None:
    rp = rp_factory(backchannel=True)
    user = idp.add_user(email="erika@example.org")
    browser, _ = browser_session()
    sign_in(browser, rp, user)
    assert signed_in_at(browser, rp)

    sign_out_on_the_account_page(idp, browser)

    [event] = logouts(idp, rp.client_id)
    assert (event.detail["outcome"], event.detail["reason"]) == ("delivered", "user")
    assert not signed_in_at(browser, rp)


@pytest.mark.parametrize(
    ("command", "reason"), [("lock", "locked"), ("force-password-reset", "password_reset")]
)
def test_an_administrator_locking_the_user_or_forcing_a_reset(
    idp: Any, rp_factory: Callable[..., LiveRp], command: str, reason: str
) -> None:
    rp = rp_factory(backchannel=True)
    user = idp.add_user(email="erika@example.org")
    browser, _ = browser_session()
    sign_in(browser, rp, user)
    other_browser, _ = browser_session()  # a second session of the same user
    sign_in(other_browser, rp, user)

    # The idp CLI, which calls the same service as the admin pages and API.
    result = idp.app.test_cli_runner().invoke(args=["users", command, user.access_number])
    assert result.exit_code == 0, result.output

    events = logouts(idp, rp.client_id, count=2)
    assert {e.detail["reason"] for e in events} == {reason}
    assert {e.detail["outcome"] for e in events} == {"delivered"}
    assert len({e.detail["sid"] for e in events}) == 2
    assert not signed_in_at(browser, rp) and not signed_in_at(other_browser, rp)


def test_a_step_up_keeps_the_clients_and_their_sids(
    idp: Any, rp_factory: Callable[..., LiveRp], receivers: Callable[..., LogoutReceiver]
) -> None:
    rp = rp_factory(backchannel=True)
    receiver = receivers()
    other_id, other_secret = idp.add_client(first_party=True, backchannel_logout_uri=receiver.url)
    other = RelyingParty(idp.url, other_id, other_secret)
    user = idp.add_user(email="erika@example.org")
    browser, _ = browser_session()
    old_sid = sid_of(sign_in(browser, rp, user))
    # Signing in again (prompt=login) replaces the IdP session with a new sid;
    # FinanceCloud, signed in under the old one, stays signed in...
    params, req = login_through(idp, other, Browser(idp.url, session=browser), user, prompt="login")
    id_token = other.redeem(params["code"], req["verifier"]).json()["id_token"]
    new_sid = other.validate_id_token(id_token, req["nonce"])["sid"]
    assert new_sid != old_sid
    assert not idp.events("backchannel_logout")
    assert signed_in_at(browser, rp)

    # ...and is told, with the sid it knows, when the new session ends.
    sign_out_on_the_account_page(idp, browser)
    [told_rp] = logouts(idp, rp.client_id)
    assert (told_rp.detail["sid"], told_rp.detail["reason"]) == (old_sid, "user")
    assert logouts(idp, other_id)[0].detail["sid"] == new_sid
    assert verified_claims(idp, receiver.next().form["logout_token"][0])["sid"] == new_sid
    assert not signed_in_at(browser, rp)


def test_another_user_signing_in_on_the_browser_ends_the_first_users_sign_ins(
    idp: Any, rp_factory: Callable[..., LiveRp]
) -> None:
    rp = rp_factory(backchannel=True)
    erika, max_ = idp.add_user(email="erika@example.org"), idp.add_user(email="max@example.org")
    browser, _ = browser_session()
    sign_in(browser, rp, erika)

    login = browser.get(idp.url + "/login", timeout=10)
    page = post_form(browser, login, identifier=max_.access_number, password=PASSWORD)
    assert page.url == idp.url + "/account", page.url

    [event] = logouts(idp, rp.client_id)
    assert (event.user_id, event.detail["reason"]) == (erika.id, "replaced")
    assert rp.tokens(browser) is None


# --- the Logout Token itself ----------------------------------------------------------------


def test_the_logout_token(idp: Any, receivers: Callable[..., LogoutReceiver]) -> None:
    receiver = receivers()
    user = idp.add_user()
    client_id, secret = idp.add_client(
        first_party=True,
        id_token_signed_response_alg="RS256",
        backchannel_logout_uri=receiver.url + "?tenant=7",  # §2.2: a query is allowed
        backchannel_logout_session_required=True,
    )
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    params, req = login_through(idp, rp, browser, user)
    id_token = rp.redeem(params["code"], req["verifier"]).json()["id_token"]
    sid = rp.validate_id_token(id_token, req["nonce"])["sid"]

    page = browser.go(f"{idp.url}/logout", params={"id_token_hint": id_token})
    assert page.status_code == 200

    # §2.5: a POST of the form-encoded logout_token, nothing else.
    received = receiver.next()
    assert received.method == "POST"
    assert received.content_type == "application/x-www-form-urlencoded"
    assert set(received.form) == {"logout_token"}
    assert "Cookie" not in received.headers
    token = received.form["logout_token"][0]

    # §2.4, checked against the published keys: signed like the client's ID
    # tokens (RS256 here), typed logout+jwt, the claims and nothing more.
    jwks = KeySet.import_key_set(requests.get(f"{idp.url}/jwks.json", timeout=10).json())
    decoded = jwt.decode(token, jwks, algorithms=["RS256"])
    assert decoded.header["typ"] == "logout+jwt" and decoded.header["alg"] == "RS256"
    claims = dict(decoded.claims)
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": idp.url},
        aud={"essential": True, "value": client_id},
        iat={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
    ).validate(claims)
    assert set(claims) == {"iss", "aud", "iat", "exp", "jti", "sub", "sid", "events"}
    assert claims["events"] == {LOGOUT_EVENT: {}}
    assert claims["sub"] == user.sub and claims["sid"] == sid  # no nonce, ever
    assert 0 < claims["exp"] - claims["iat"] <= 120
    assert abs(claims["iat"] - time.time()) < 60
    [event] = logouts(idp, client_id)
    assert event.detail["outcome"] == "delivered"
    assert token not in json.dumps(event.detail)


def test_a_client_without_the_uri_gets_nothing(
    idp: Any, rp_factory: Callable[..., LiveRp], receivers: Callable[..., LogoutReceiver]
) -> None:
    rp = rp_factory()  # FinanceCloud registered without a back-channel logout URI
    receiver = receivers()
    told_id, told_secret = idp.add_client(first_party=True, backchannel_logout_uri=receiver.url)
    user = idp.add_user(email="erika@example.org")
    browser, _ = browser_session()
    sign_in(browser, rp, user)
    login_through(
        idp, RelyingParty(idp.url, told_id, told_secret), Browser(idp.url, session=browser), user
    )

    sign_out_on_the_account_page(idp, browser)

    receiver.next()
    logouts(idp, told_id)
    assert [e.client_id for e in idp.events("backchannel_logout")] == [told_id]
    assert signed_in_at(browser, rp)  # nobody told it


def test_a_dead_or_slow_client_neither_breaks_nor_holds_up_the_sign_out(
    idp: Any, receivers: Callable[..., LogoutReceiver]
) -> None:
    slow = receivers(hold=True)
    refusing = receivers(status=400)
    user = idp.add_user()
    clients = {
        "dead": f"http://127.0.0.1:{free_port()}/backchannel-logout",  # nobody listens
        "slow": slow.url,
        "refusing": refusing.url,
    }
    rps: dict[str, RelyingParty] = {}
    browser = Browser(idp.url)
    for name, uri in clients.items():
        client_id, secret = idp.add_client(first_party=True, backchannel_logout_uri=uri)
        rps[name] = RelyingParty(idp.url, client_id, secret)
        login_through(idp, rps[name], browser, user)

    page = browser.go(f"{idp.url}/logout")
    page = browser.submit(page, "/logout", confirm="yes")
    # The sign-out is done while the slow client still holds its answer: had
    # it waited, the IdP would have given up on the client (a timeout).
    assert page.status_code == 200
    slow.next()  # it has the token, and holds its answer
    slow_id = rps["slow"].client_id
    assert not [e for e in idp.events("backchannel_logout") if e.client_id == slow_id]
    slow.release()

    outcomes = {name: logouts(idp, rp.client_id)[0].detail for name, rp in rps.items()}
    assert outcomes["dead"]["outcome"] == "unreachable" and outcomes["dead"]["status"] is None
    assert (outcomes["slow"]["outcome"], outcomes["slow"]["status"]) == ("delivered", 200)
    assert (outcomes["refusing"]["outcome"], outcomes["refusing"]["status"]) == ("refused", 400)
    assert idp.events("logout")


# --- the RP's checks (§2.6) ---------------------------------------------------------------


def test_the_rp_refuses_bad_logout_tokens(idp: Any, rp_factory: Callable[..., LiveRp]) -> None:
    from idp.oidc.backchannel import logout_token
    from idp.oidc.clients import get_client

    rp = rp_factory(backchannel=True)
    other_id, _ = idp.add_client(name="Other")
    user = idp.add_user(email="erika@example.org")
    browser, _ = browser_session()
    me = sign_in(browser, rp, user)
    sid = sid_of(me)
    key = signing_key(idp)

    def refused(token: str | None, why: str) -> None:
        response = post_logout_token(rp, token)
        assert response.status_code == 400, (why, response.text)
        assert response.json()["error"] == "invalid_request"
        assert response.headers["Cache-Control"] == "no-store"
        assert rp.tokens(browser) is not None, why

    refused(None, "no token")
    refused("not.a.jwt", "not a JWT")
    # Signed by the IdP, but for another client.
    with idp.app.app_context():
        wrong_audience = logout_token(get_client(other_id), sub=user.sub, sid=sid)
    refused(wrong_audience, "wrong audience")
    # Forged: a key of our own, under a kid the IdP does not have, and under
    # the IdP's own kid.
    forger = ECKey.generate_key("P-256", auto_kid=True)
    claims = logout_claims(idp, rp, sub=user.sub, sid=sid)
    refused(jwt.encode({"alg": "ES256", "kid": forger.kid, "typ": "logout+jwt"}, claims, forger),
            "unknown key")  # fmt: skip
    refused(jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "logout+jwt"}, claims, forger),
            "forged signature")  # fmt: skip
    # The RP's own ID token is no Logout Token (typ JWT, a nonce, no events).
    refused(pre(me, "id-token"), "an ID token")
    for changes, why in [
        ({"events": None}, "no events"),
        ({"events": {"http://schemas.openid.net/event/other": {}}}, "another event"),
        ({"nonce": "n-1"}, "a nonce"),
        ({"sub": None, "sid": None}, "neither sub nor sid"),
        ({"iss": "http://localhost:1"}, "another issuer"),
        ({"iat": int(time.time()) - 3600, "exp": int(time.time()) - 3000}, "expired"),
        ({"exp": int(time.time()) + 86400}, "lives too long"),
        ({"jti": None}, "no jti"),
    ]:
        refused(sign(key, logout_claims(idp, rp, **{"sub": user.sub, "sid": sid, **changes})), why)
    refused(sign(key, claims, typ="JWT"), "not typed logout+jwt")

    # A good token ends the sign-in; the same token again is a replay.
    with idp.app.app_context():
        good = logout_token(get_client(rp.client_id), sub=user.sub, sid=sid)
    response = post_logout_token(rp, good)
    assert response.status_code == 200, response.text
    assert not signed_in_at(browser, rp)
    replayed = post_logout_token(rp, good)
    assert replayed.status_code == 400 and "used before" in replayed.json()["error_description"]


def test_without_sid_every_sign_in_of_the_user_ends(
    idp: Any, rp_factory: Callable[..., LiveRp]
) -> None:
    rp = rp_factory(backchannel=True)
    erika, max_ = idp.add_user(email="erika@example.org"), idp.add_user(email="max@example.org")
    browsers = [browser_session()[0] for _ in range(3)]
    for browser, user in zip(browsers, (erika, erika, max_), strict=True):
        sign_in(browser, rp, user)

    # §2.7: a token with sub alone stands for all of the user's sessions.
    token = sign(signing_key(idp), logout_claims(idp, rp, sub=erika.sub, sid=None))
    assert post_logout_token(rp, token).status_code == 200
    assert [signed_in_at(b, rp) for b in browsers] == [False, False, True]


# --- registration -------------------------------------------------------------------------


def test_the_uri_is_checked_like_every_client_uri(idp: Any) -> None:
    from idp.oidc.clients import ClientError

    for uri, public, message in [
        ("http://rp.example/backchannel-logout", False, "must be an https URI"),
        ("https://rp.example/backchannel-logout#frag", False, "must not contain a fragment"),
        ("https://rp.example/logout#", False, "must not contain a fragment"),
        ("ftp://rp.example/logout", False, "must be an https URI"),
        ("https:///logout", False, "must be an https URI"),
        ("https://rp.example/*", False, "wildcards are not allowed"),
        ("https://rp.example/a b", False, "at most 500 characters"),
        ("https://rp.example/" + "a" * 500, False, "at most 500 characters"),
        ("http://localhost:9/logout", True, "https for a public client"),
    ]:
        with pytest.raises(ClientError) as refused:
            idp.add_client(
                token_endpoint_auth_method="none" if public else "client_secret_basic",
                backchannel_logout_uri=uri,
            )
        assert refused.value.field == "backchannel_logout_uri", uri
        assert message in refused.value.message, (uri, refused.value.message)
    for uri in (
        "https://rp.example/backchannel-logout?tenant=1",
        "http://localhost:9/logout",
        "http://127.0.0.1:9/logout",
    ):
        idp.add_client(backchannel_logout_uri=uri)


def test_discovery_advertises_back_channel_logout(idp: Any) -> None:
    doc = requests.get(f"{idp.url}/.well-known/openid-configuration", timeout=10).json()
    # Back-Channel Logout §2.1; sid is in every Logout Token.
    assert doc["backchannel_logout_supported"] is True
    assert doc["backchannel_logout_session_supported"] is True
    assert "sid" in doc["claims_supported"]


def test_the_admin_api_cli_pages_and_registration_take_the_fields(idp: Any) -> None:
    # Admin JSON API.
    api = automation(idp)
    created = api.ok("POST", "/clients", 201, json={
        "client_name": "Payroll", "redirect_uris": ["https://payroll.example/cb"],
        "backchannel_logout_uri": "https://payroll.example/bcl",
        "backchannel_logout_session_required": True})  # fmt: skip
    assert created["backchannel_logout_uri"] == "https://payroll.example/bcl"
    assert created["backchannel_logout_session_required"] is True
    bad = api.call("PATCH", f"/clients/{created['client_id']}",
                   json={"backchannel_logout_uri": "https://payroll.example/bcl#x"})  # fmt: skip
    assert bad.status_code == 400 and "backchannel_logout_uri" in bad.json()["fields"]
    cleared = api.ok("PATCH", f"/clients/{created['client_id']}",
                     json={"backchannel_logout_uri": None})  # fmt: skip
    assert cleared["backchannel_logout_uri"] is None

    # idp clients add / update.
    def cli(*args: str) -> Any:
        result = idp.app.test_cli_runner().invoke(args=["clients", *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    added = cli("add", "--name", "Ledger", "--redirect-uri", "https://ledger.example/cb",
                "--backchannel-logout-uri", "https://ledger.example/bcl",
                "--backchannel-logout-session-required")  # fmt: skip
    assert added["backchannel_logout_uri"] == "https://ledger.example/bcl"
    assert added["backchannel_logout_session_required"] is True
    updated = cli("update", added["client_id"], "--backchannel-logout-uri", "",
                  "--no-backchannel-logout-session-required")  # fmt: skip
    assert updated["backchannel_logout_uri"] is None
    assert updated["backchannel_logout_session_required"] is False
    refused = idp.app.test_cli_runner().invoke(
        args=[
            "clients",
            "update",
            added["client_id"],
            "--backchannel-logout-uri",
            "http://x.example/",
        ]
    )
    assert refused.exit_code != 0 and "backchannel_logout_uri" in refused.output

    # The admin pages.
    user, device = admin_with_device(idp, email="admin@example.org")
    browser, _ = admin_session(idp, user, device)
    form = get(browser, "/admin/clients/new")
    assert 'name="backchannel_logout_uri"' in form.text
    bad_page = send(browser, form, "/admin/clients/new",
                    **client_form(backchannel_logout_uri="http://ledger.example/bcl"))  # fmt: skip
    assert bad_page.status_code == 400 and "https" in by_id(
        bad_page, "error-backchannel_logout_uri"
    )
    shown = send(browser, form, "/admin/clients/new", **client_form(
        name="Pages", backchannel_logout_uri="https://pages.example/bcl",
        backchannel_logout_session_required="yes"))  # fmt: skip
    assert shown.status_code == 200 and by_id(shown, "secret-warning"), shown.text[:2000]
    shown = get(browser, f"/admin/clients/{by_id(shown, 'client-id')}")
    assert by_id(shown, "d-backchannel_logout_uri") == (
        "https://pages.example/bcl (needs the session ID)"
    )

    # Dynamic client registration (RFC 7591 metadata of Back-Channel Logout §2.2).
    registered = register(idp, {**METADATA, "backchannel_logout_uri": "https://dyn.example/bcl",
                                 "backchannel_logout_session_required": True},
                          initial_token(idp))  # fmt: skip
    assert registered.status_code == 201, registered.text
    assert registered.json()["backchannel_logout_uri"] == "https://dyn.example/bcl"
    assert registered.json()["backchannel_logout_session_required"] is True
    for value, field in [("https://dyn.example/bcl#f", "backchannel_logout_uri"),
                         ("yes", "backchannel_logout_session_required")]:  # fmt: skip
        bad_metadata = register(idp, {**METADATA, field: value}, initial_token(idp))
        assert bad_metadata.status_code == 400
        assert bad_metadata.json()["error"] == "invalid_client_metadata"
        assert field in bad_metadata.json()["error_description"]
