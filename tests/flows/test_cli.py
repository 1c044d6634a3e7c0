"""The ``idp`` command line against a live IdP: what it changes takes effect."""

from __future__ import annotations

import json
from typing import Any

import requests
from click.testing import Result

from .conftest import PASSWORD
from .helpers import Browser, RelyingParty


def run(idp: Any, *args: str, input: str | None = None) -> Result:
    result = idp.app.test_cli_runner().invoke(args=list(args), input=input)
    return result


def client_credentials(idp: Any, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        f"{idp.url}/token",
        data={"grant_type": "client_credentials", "scope": "openid"},
        auth=(client_id, secret),
        timeout=30,
    )


def test_users_add_list_lock_unlock(idp: Any) -> None:
    result = run(
        idp, "users", "add", "--email", "cli@example.org", "--username", "cli",
        "--password-stdin", "--json", input=PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["email"] == "cli@example.org"
    assert created["access_number"].isdigit() and len(created["access_number"]) == 10
    assert "password" not in created and PASSWORD not in result.stdout

    listed = json.loads(run(idp, "users", "list", "--json").stdout)
    assert [u["access_number"] for u in listed] == [created["access_number"]]

    # A too short password is refused with a message, and nothing is created.
    bad = run(idp, "users", "add", "--username", "short", "--password-stdin", input="abc\n")
    assert bad.exit_code != 0 and "8 characters" in bad.output
    assert len(json.loads(run(idp, "users", "list", "--json").stdout)) == 1

    # Locking ends the user's sessions and refresh tokens at once.
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    url, req = rp.authorize_url()
    page = browser.sign_in(browser.go(url), "cli", PASSWORD)
    code = page.headers["Location"].split("code=")[1].split("&")[0]
    tokens = rp.redeem(code, req["verifier"]).json()

    assert run(idp, "users", "lock", "cli").exit_code == 0
    refreshed = rp.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    userinfo = requests.get(
        f"{idp.url}/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=30,
    )
    assert userinfo.status_code == 401
    prompt_none = browser.go(rp.authorize_url(prompt="none")[0])
    assert "error=login_required" in prompt_none.headers["Location"]
    assert idp.events("user_locked")

    assert run(idp, "users", "unlock", created["access_number"]).exit_code == 0
    page = browser.sign_in(browser.go(rp.authorize_url()[0]), "cli@example.org", PASSWORD)
    assert "code=" in page.headers["Location"]


def test_clients_add_show_rotate_disable_delete(idp: Any) -> None:
    result = run(
        idp, "clients", "add", "--name", "Batch", "--grant-type", "client_credentials",
        "--client-id", "batch", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    secret = created["client_secret"]
    assert client_credentials(idp, "batch", secret).status_code == 200

    shown = json.loads(run(idp, "clients", "show", "batch", "--json").stdout)
    assert shown["grant_types"] == ["client_credentials"]
    assert "client_secret" not in shown and secret not in json.dumps(shown)
    assert [c["client_id"] for c in json.loads(run(idp, "clients", "list", "--json").stdout)] == [
        "batch"
    ]

    rotated = run(idp, "clients", "rotate-secret", "batch")
    assert rotated.exit_code == 0
    new_secret = rotated.stdout.split("client_secret:")[1].strip()
    old = client_credentials(idp, "batch", secret)
    assert old.status_code == 401 and old.json()["error"] == "invalid_client"
    assert client_credentials(idp, "batch", new_secret).status_code == 200

    assert run(idp, "clients", "disable", "batch").exit_code == 0
    assert client_credentials(idp, "batch", new_secret).status_code == 401
    assert run(idp, "clients", "enable", "batch").exit_code == 0
    assert client_credentials(idp, "batch", new_secret).status_code == 200

    assert run(idp, "clients", "delete", "batch", "--yes").exit_code == 0
    assert client_credentials(idp, "batch", new_secret).status_code == 401
    assert run(idp, "clients", "show", "batch").exit_code != 0
    assert idp.events("client_secret_rotated") and idp.events("client_deleted")


def test_clients_add_refuses_bad_metadata(idp: Any) -> None:
    cases = {
        "http://app.example.com/cb": "https",
        "https://app.example.com/cb#frag": "fragment",
        "https://*.example.com/cb": "wildcard",
    }
    for uri, message in cases.items():
        result = run(idp, "clients", "add", "--name", "Bad", "--redirect-uri", uri)
        assert result.exit_code != 0
        assert message in result.output, result.output
    public_cc = run(
        idp, "clients", "add", "--name", "Bad", "--auth-method", "none",
        "--grant-type", "client_credentials",
    )  # fmt: skip
    assert public_cc.exit_code != 0 and "confidential" in public_cc.output
    assert json.loads(run(idp, "clients", "list", "--json").stdout) == []


def test_public_client_gets_no_secret(idp: Any) -> None:
    result = run(
        idp, "clients", "add", "--name", "App", "--auth-method", "none",
        "--redirect-uri", "com.example.app:/callback", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["client_secret"] is None


def test_keys_rotate_keeps_the_old_key_published(idp: Any) -> None:
    before = json.loads(run(idp, "keys", "list", "--json").stdout)
    assert sorted(k["alg"] for k in before) == ["ES256", "RS256"]
    assert {k["state"] for k in before} == {"active"}

    assert run(idp, "keys", "rotate", "--alg", "ES256").exit_code == 0
    after = {k["kid"]: k for k in json.loads(run(idp, "keys", "list", "--json").stdout)}
    old_es = next(k for k in before if k["alg"] == "ES256")["kid"]
    assert after[old_es]["state"] == "retiring" and after[old_es]["retire_after"]
    assert len(after) == 3

    # Still published until every token it signed has expired; nothing is
    # old enough to retire yet.
    idp.app.extensions["idp"].keyring.invalidate()
    published = {k["kid"] for k in requests.get(f"{idp.url}/jwks.json", timeout=30).json()["keys"]}
    assert set(after) <= published
    result = run(idp, "keys", "retire-expired")
    assert result.exit_code == 0 and "retired 0" in result.output


def test_users_add_with_a_shared_email_says_how_those_accounts_sign_in(idp: Any) -> None:
    first = run(idp, "users", "add", "--email", "Family@example.org", "--password-stdin",
                input=PASSWORD + "\n")  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "note:" not in first.stderr

    second = run(idp, "users", "add", "--email", "family@example.org", "--password-stdin",
                 input=PASSWORD + "\n")  # fmt: skip
    assert second.exit_code == 0, second.output
    assert "created user" in second.stdout
    assert "other accounts already have the e-mail address family@example.org" in second.stderr
    assert "sign in with their access number" in second.stderr
