"""Dynamic client registration (RFC 7591) and client configuration (RFC 7592)
against a live IdP: a client registers with an administrator's initial access
token, reads and updates its registration, logs a user in, and deletes
itself; bad metadata and bad tokens get the RFC's errors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests
from joserfc.jwk import ECKey
from sqlalchemy import select, update

from .helpers import CALLBACK, Browser, RelyingParty
from .test_protocol import login_through

METADATA: dict[str, Any] = {
    "client_name": "Dynamic Ledger",
    "redirect_uris": [CALLBACK],
    "post_logout_redirect_uris": ["http://localhost:9/"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "openid profile email offline_access",
    "contacts": ["ops@ledger.example"],
    "logo_uri": "https://ledger.example/logo.png",
}


# --- helpers ---------------------------------------------------------------------------


def initial_token(idp: Any, *, uses: int = 1, expires_in: int = 3600) -> str:
    """An initial access token from the service the CLI and admin pages use."""
    from idp.extensions import commit
    from idp.oidc.registration import issue_initial_token

    with idp.app.app_context():
        issued = issue_initial_token(actor="test", uses=uses, expires_in=expires_in)
        commit()
        return issued.token


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def register(idp: Any, metadata: Any, token: str | None) -> requests.Response:
    return requests.post(f"{idp.url}/register", json=metadata, headers=bearer(token), timeout=30)


def configuration(
    idp: Any, method: str, client_id: str, token: str | None, body: Any = None
) -> requests.Response:
    return requests.request(
        method,
        f"{idp.url}/register/{client_id}",
        json=body,
        headers=bearer(token),
        timeout=30,
    )


def assert_error(response: requests.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    return body


def assert_invalid_token(response: requests.Response) -> None:
    # RFC 6750 §3.1: 401 with a Bearer challenge.
    assert_error(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def client_row(idp: Any, client_id: str) -> Any:
    from idp.extensions import db
    from idp.oidc.models import Client

    with idp.app.app_context():
        row = db.session.scalar(select(Client).where(Client.client_id == client_id))
        if row is not None:
            db.session.expunge(row)
        return row


# --- the round trip --------------------------------------------------------------------


def test_register_read_update_login_delete(idp: Any) -> None:
    # An administrator issues the initial access token with the CLI.
    issued = idp.app.test_cli_runner().invoke(args=["clients", "initial-token", "--json"])
    assert issued.exit_code == 0, issued.output
    token = json.loads(issued.stdout)["initial_access_token"]

    created = register(idp, METADATA, token)
    assert created.status_code == 201, created.text
    # RFC 7591 §3.2.1: the secret and the registration access token are in
    # this response only; it must not be cached.
    assert created.headers["Cache-Control"] == "no-store"
    info = created.json()
    client_id, secret = info["client_id"], info["client_secret"]
    registration_token = info["registration_access_token"]
    assert abs(info["client_id_issued_at"] - time.time()) < 60
    assert info["client_secret_expires_at"] == 0
    assert info["registration_client_uri"] == f"{idp.url}/register/{client_id}"
    for name, value in METADATA.items():
        assert info[name] == value, name

    # Stored: only digests; never first-party (the user is asked for consent).
    row = client_row(idp, client_id)
    assert row.dynamically_registered and not row.first_party and row.require_pkce
    assert row.client_secret_digest and secret not in row.client_secret_digest
    assert row.registration_token_digest not in (None, registration_token)
    [event] = idp.events("client_registered")
    assert event.actor == "dcr" and event.client_id == client_id

    # The initial access token was good for one registration.
    assert_invalid_token(register(idp, METADATA, token))

    # RFC 7592 §2.1: read.
    read = configuration(idp, "GET", client_id, registration_token)
    assert read.status_code == 200, read.text
    assert read.headers["Cache-Control"] == "no-store"
    assert read.json() == {k: v for k, v in info.items() if k != "client_secret"}

    # RFC 7592 §2.2: update replaces the metadata; the registration access
    # token is rotated (§3), the secret is kept.
    changed = {
        **{k: v for k, v in read.json().items() if k not in ("registration_access_token",)},
        "client_name": "Ledger Online",
        "client_secret": secret,
    }
    for name in ("registration_client_uri", "client_id_issued_at", "client_secret_expires_at"):
        changed.pop(name)
    changed.pop("logo_uri")  # omitted: removed from the registration
    updated = configuration(idp, "PUT", client_id, registration_token, changed)
    assert updated.status_code == 200, updated.text
    after = updated.json()
    assert after["client_name"] == "Ledger Online" and "logo_uri" not in after
    assert "client_secret" not in after
    new_registration_token = after["registration_access_token"]
    assert new_registration_token != registration_token
    assert_invalid_token(configuration(idp, "GET", client_id, registration_token))
    assert configuration(idp, "GET", client_id, new_registration_token).status_code == 200
    [event] = idp.events("client_updated")
    assert event.actor == "dcr" and set(event.detail["changed"]) == {"client_name", "logo_uri"}

    # The registered client logs a user in: consent is asked (never first-party).
    user = idp.add_user(username="dora", email="dora@example.org")
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    consent = browser.sign_in(browser.go(rp.authorize_url()[0]), "dora", "Correct-Horse-9")
    assert 'value="allow"' in consent.text and "Ledger Online" in consent.text
    params, req = login_through(idp, rp, browser, user)
    tokens = rp.redeem(params["code"], req["verifier"])
    assert tokens.status_code == 200, tokens.text
    claims = rp.validate_id_token(tokens.json()["id_token"], req["nonce"])
    assert claims["sub"] == user.sub and claims["aud"] == [client_id]
    access = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    assert requests.get(f"{idp.url}/userinfo", headers=access, timeout=30).status_code == 200

    # RFC 7592 §2.3: delete; the secret, the tokens and the registration
    # access token stop working at once.
    deleted = configuration(idp, "DELETE", client_id, new_registration_token)
    assert deleted.status_code == 204, deleted.text
    assert client_row(idp, client_id) is None
    assert_invalid_token(configuration(idp, "GET", client_id, new_registration_token))
    refreshed = rp.token(grant_type="refresh_token", refresh_token=tokens.json()["refresh_token"])
    assert refreshed.status_code == 401 and refreshed.json()["error"] == "invalid_client"
    assert requests.get(f"{idp.url}/userinfo", headers=access, timeout=30).status_code == 401
    [event] = idp.events("client_deleted")
    assert event.actor == "dcr" and event.client_id == client_id


def test_public_native_client_and_a_secret_on_update(idp: Any) -> None:
    token = initial_token(idp)
    native = {
        "client_name": "Ledger for Android",
        "redirect_uris": ["com.ledger.app:/callback", "http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none",
        # Not RFC 7591 metadata: ignored (RFC 7591 §2), never first-party.
        "first_party": True,
        "require_pkce": False,
    }
    created = register(idp, native, token)
    assert created.status_code == 201, created.text
    info = created.json()
    assert "client_secret" not in info and "client_secret_expires_at" not in info
    assert info["grant_types"] == ["authorization_code"]  # RFC 7591 §2 default
    assert info["response_types"] == ["code"]
    assert "first_party" not in info
    row = client_row(idp, info["client_id"])
    assert not row.first_party and row.require_pkce and row.client_secret_digest is None

    # Becoming confidential on update issues a secret, in that response only.
    body = {
        "client_id": info["client_id"],
        "client_name": "Ledger for Android",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "client_secret_post",
    }
    updated = configuration(idp, "PUT", info["client_id"], info["registration_access_token"], body)
    assert updated.status_code == 200, updated.text
    secret = updated.json()["client_secret"]
    assert updated.json()["client_secret_expires_at"] == 0
    cc = requests.post(
        f"{idp.url}/token",
        data={"grant_type": "authorization_code", "code": "x", "client_id": info["client_id"]},
        timeout=30,
    )
    assert cc.status_code == 401  # no secret: client authentication fails
    with_secret = requests.post(
        f"{idp.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_id": info["client_id"],
            "client_secret": secret,
        },
        timeout=30,
    )
    assert with_secret.status_code == 400 and with_secret.json()["error"] == "invalid_grant"


# --- refused metadata ------------------------------------------------------------------


def test_bad_redirect_uris_are_refused_and_use_no_token(idp: Any) -> None:
    token = initial_token(idp, uses=1)
    cases = {
        "http://ledger.example/cb": "https",
        "https://ledger.example/cb#top": "fragment",
        "https://*.ledger.example/cb": "wildcard",
    }
    for uri, message in cases.items():
        refused = register(idp, {**METADATA, "redirect_uris": [uri]}, token)
        # RFC 7591 §3.2.2
        body = assert_error(refused, 400, "invalid_redirect_uri")
        assert message in body["error_description"], body
    # A refused registration took no use of the token.
    assert register(idp, METADATA, token).status_code == 201


def test_bad_metadata_is_refused(idp: Any) -> None:
    token = initial_token(idp, uses=1)
    keys = {"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"grant_types": ["authorization_code", "implicit"]}, "grant_types"),
        ({"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}, "grant_types"),
        ({"token_endpoint_auth_method": "client_secret_jwt"}, "token_endpoint_auth_method"),
        ({"token_endpoint_auth_method": 7}, "token_endpoint_auth_method"),
        (
            {
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": keys,
                "jwks_uri": "https://ledger.example/jwks.json",
            },
            "jwks",
        ),
        ({"response_types": ["code", "token"]}, "response_types"),
        ({"response_types": []}, "response_types"),
        ({"scope": "openid admin"}, "scope"),
        ({"client_name": None}, "client_name"),
        ({"contacts": "ops@ledger.example"}, "contacts"),
        ({"id_token_signed_response_alg": "none"}, "id_token_signed_response_alg"),
        ({"id_token_encrypted_response_alg": "RSA-OAEP"}, "id_token_encrypted_response_alg"),
        ({"post_logout_redirect_uris": ["http://ledger.example/"]}, "post_logout_redirect_uris"),
        # Longer than the column holds: refused here, never a database error.
        ({"logo_uri": "https://ledger.example/" + "l" * 500}, "logo_uri"),
        ({"jwks_uri": "https://ledger.example/" + "k" * 500}, "jwks_uri"),
    ]
    for change, field in cases:
        body = assert_error(
            register(idp, {**METADATA, **change}, token), 400, "invalid_client_metadata"
        )
        assert body["error_description"].startswith(field), (change, body)
    not_json = requests.post(
        f"{idp.url}/register", data="client_name=x", headers=bearer(token), timeout=30
    )
    assert_error(not_json, 400, "invalid_request")
    assert_error(register(idp, ["client_name"], token), 400, "invalid_request")
    # With inline keys alone, private_key_jwt registers.
    good = {**METADATA, "token_endpoint_auth_method": "private_key_jwt", "jwks": keys}
    created = register(idp, good, token)
    assert created.status_code == 201, created.text
    assert created.json()["jwks"] == keys and "client_secret" not in created.json()


# --- tokens ----------------------------------------------------------------------------


def test_initial_access_token_missing_wrong_expired_or_used_up(idp: Any) -> None:
    from idp.extensions import db, utcnow
    from idp.oidc.models import InitialAccessToken

    # Open registration is off by default: no token, no registration.
    missing = register(idp, METADATA, None)
    assert_invalid_token(missing)
    assert missing.headers["WWW-Authenticate"] == "Bearer"  # RFC 6750 §3.1
    wrong = register(idp, METADATA, "not-a-token")
    assert_invalid_token(wrong)
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    basic = requests.post(
        f"{idp.url}/register", json=METADATA, auth=("someone", "secret"), timeout=30
    )
    assert_invalid_token(basic)

    expired = initial_token(idp, uses=5)
    with idp.app.app_context():
        db.session.execute(
            update(InitialAccessToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert_invalid_token(register(idp, METADATA, expired))

    twice = initial_token(idp, uses=2)
    assert register(idp, METADATA, twice).status_code == 201
    assert register(idp, METADATA, twice).status_code == 201
    assert_invalid_token(register(idp, METADATA, twice))
    assert len(idp.events("client_registered")) == 2


def test_initial_token_cli_and_service(idp: Any) -> None:
    from idp.extensions import db, utcnow
    from idp.oidc import registration
    from idp.oidc.models import InitialAccessToken

    runner = idp.app.test_cli_runner()
    result = runner.invoke(args=["clients", "initial-token", "--expires-in", "600", "--uses", "3"])
    assert result.exit_code == 0, result.output
    token = result.stdout.split("initial_access_token:")[1].strip()
    assert "shown only now" in result.stderr
    with idp.app.app_context():
        [row] = db.session.scalars(select(InitialAccessToken))
        # Stored as a keyed digest, with its uses and expiry.
        assert row.digest != token and token not in row.digest
        assert row.uses == row.uses_left == 3 and row.created_by == "cli"
        assert abs((row.expires_at - utcnow()).total_seconds() - 600) < 60
        token_id = row.id
    [event] = idp.events("initial_access_token_issued")
    assert event.actor == "cli" and token not in json.dumps(event.detail)

    for bad in (["--uses", "0"], ["--expires-in", "10"]):
        refused = runner.invoke(args=["clients", "initial-token", *bad])
        assert refused.exit_code != 0

    assert register(idp, METADATA, token).status_code == 201
    with idp.app.app_context():
        [listed] = registration.initial_tokens()
        assert listed.id == token_id and listed.uses_left == 2
        assert registration.revoke_initial_token(actor="test", token_id=token_id)
        db.session.commit()
        assert registration.initial_tokens(include_spent=True) == []
    # A withdrawn token no longer registers anything.
    assert_invalid_token(register(idp, METADATA, token))


def test_open_registration_when_switched_on(idp_factory: Callable[..., Any]) -> None:
    live = idp_factory(client_registration_open=True, client_registration_rate_limit=2)
    first = register(live, METADATA, None)
    assert first.status_code == 201, first.text
    assert not client_row(live, first.json()["client_id"]).first_party
    assert register(live, {**METADATA, "client_name": "Second"}, None).status_code == 201
    # Throttled per address.
    throttled = assert_error(register(live, METADATA, None), 429, "too_many_attempts")
    assert throttled["error_description"]
    # A token sent anyway is still checked.
    assert_invalid_token(register(live, METADATA, "not-a-token"))
    # An administrator's token is not throttled.
    assert register(live, METADATA, initial_token(live)).status_code == 201


def test_registration_access_token_is_for_its_own_client_only(idp: Any) -> None:
    token = initial_token(idp, uses=2)
    a = register(idp, {**METADATA, "client_name": "A"}, token).json()
    b = register(idp, {**METADATA, "client_name": "B"}, token).json()
    b_token = b["registration_access_token"]
    for method, body in (("GET", None), ("PUT", {**METADATA, "client_id": a["client_id"]})):
        assert_invalid_token(configuration(idp, method, a["client_id"], b_token, body))
    assert_invalid_token(configuration(idp, "DELETE", a["client_id"], b_token))
    assert_invalid_token(configuration(idp, "GET", a["client_id"], None))
    assert client_row(idp, a["client_id"]) is not None
    # Unknown clients, and clients an administrator added, have no
    # registration access token at all.
    assert_invalid_token(configuration(idp, "GET", "no-such-client", b_token))
    admin_client, _ = idp.add_client()
    assert_invalid_token(configuration(idp, "GET", admin_client, b_token))

    # RFC 7592 §2.2: the update names this client, sends no server-set
    # fields, and a client_secret sent must be the current one.
    put = {**METADATA, "client_id": b["client_id"]}
    for body in (
        {**put, "client_id": a["client_id"]},
        {k: v for k, v in put.items() if k != "client_id"},
        {**put, "registration_access_token": b_token},
        {**put, "client_secret": "wrong-secret-wrong-secret"},
    ):
        assert_error(
            configuration(idp, "PUT", b["client_id"], b_token, body), 400, "invalid_request"
        )
    bad_uri = {**put, "redirect_uris": ["https://ledger.example/cb#x"]}
    assert_error(
        configuration(idp, "PUT", b["client_id"], b_token, bad_uri), 400, "invalid_redirect_uri"
    )
    # Nothing of the refused updates stuck, and the token was not rotated.
    read = configuration(idp, "GET", b["client_id"], b_token)
    assert read.status_code == 200 and read.json()["redirect_uris"] == [CALLBACK]


def test_discovery_advertises_the_registration_endpoint(idp: Any) -> None:
    doc = requests.get(f"{idp.url}/.well-known/openid-configuration", timeout=30).json()
    assert doc["registration_endpoint"] == f"{idp.url}/register"
    assert_invalid_token(requests.post(doc["registration_endpoint"], json=METADATA, timeout=30))
