"""Each process keeps the client registrations it read (idp.oidc.client_cache);
a change made through any surface (admin API, ``idp clients``, dynamic
registration) in one instance applies to the very next request in another
instance on the same database and Redis, with nothing to wait for: each
lookup compares the registration's stamp in Redis, which a change replaces."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import requests

from .conftest import LiveIdp
from .helpers import Browser, RelyingParty
from .test_admin_api import automation
from .test_admin_cli import ok
from .test_client_registration import bearer, configuration, initial_token, register
from .test_protocol import login_through


def token(idp: LiveIdp, client_id: str, secret: str, scope: str = "profile") -> requests.Response:
    return requests.post(
        f"{idp.url}/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client_id, secret),
        timeout=30,
    )


def status(idp: LiveIdp, client_id: str, secret: str, scope: str = "profile") -> int:
    return token(idp, client_id, secret, scope).status_code


def two_instances(idp_factory: Callable[..., LiveIdp]) -> tuple[LiveIdp, LiveIdp]:
    first = idp_factory()
    second = idp_factory()  # another instance on the same database and Redis
    return first, second


def service_client(idp: LiveIdp, reader: LiveIdp) -> tuple[str, str]:
    """A client-credentials client, read (and kept) by ``reader``."""
    client_id, secret = idp.add_client(
        grant_types=["client_credentials"], allowed_scopes=["profile", "email"], redirect_uris=[]
    )
    assert secret is not None
    for _ in range(2):
        assert status(reader, client_id, secret) == 200
    return client_id, secret


def test_admin_api_changes_apply_in_another_instance_at_once(
    idp_factory: Callable[..., LiveIdp],
) -> None:
    first, second = two_instances(idp_factory)
    api = automation(first)
    client_id, secret = service_client(first, second)

    rotated = api.ok("POST", f"/clients/{client_id}/secret")["client_secret"]
    assert status(second, client_id, secret) == 401
    assert status(second, client_id, rotated) == 200

    api.ok("POST", f"/clients/{client_id}/disable")
    assert status(second, client_id, rotated) == 401
    api.ok("POST", f"/clients/{client_id}/enable")
    assert status(second, client_id, rotated) == 200

    api.ok("PATCH", f"/clients/{client_id}", json={"scope": "email"})
    narrowed = token(second, client_id, rotated)
    assert narrowed.status_code == 400 and narrowed.json()["error"] == "invalid_scope"
    assert status(second, client_id, rotated, "email") == 200

    api.ok("DELETE", f"/clients/{client_id}", 204)
    assert status(second, client_id, rotated, "email") == 401
    assert status(first, client_id, rotated, "email") == 401


def test_cli_changes_apply_in_another_instance_at_once(
    idp_factory: Callable[..., LiveIdp],
) -> None:
    first, second = two_instances(idp_factory)
    client_id, secret = service_client(first, second)

    printed = ok(first, "clients", "rotate-secret", client_id).stdout
    rotated = printed.split("client_secret:")[1].strip()
    assert status(second, client_id, secret) == 401
    assert status(second, client_id, rotated) == 200

    ok(first, "clients", "disable", client_id)
    assert status(second, client_id, rotated) == 401
    ok(first, "clients", "enable", client_id)
    assert status(second, client_id, rotated) == 200

    ok(first, "clients", "update", client_id, "--scope", "email")
    assert status(second, client_id, rotated) == 400
    assert status(second, client_id, rotated, "email") == 200

    ok(first, "clients", "delete", client_id, "--yes")
    assert status(second, client_id, rotated, "email") == 401


def test_dynamic_registration_changes_apply_in_another_instance_at_once(
    idp_factory: Callable[..., LiveIdp],
) -> None:
    first, second = two_instances(idp_factory)
    metadata: dict[str, Any] = {
        "client_name": "Batch job",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "profile email",
    }
    created = register(first, metadata, initial_token(first))
    assert created.status_code == 201, created.text
    info = created.json()
    client_id, secret = info["client_id"], info["client_secret"]
    assert status(second, client_id, secret) == 200

    # RFC 7592 §2.2: the registration replaced through the first instance.
    updated = configuration(
        first, "PUT", client_id, info["registration_access_token"],
        {**metadata, "client_id": client_id, "client_secret": secret, "scope": "email"},
    )  # fmt: skip
    assert updated.status_code == 200, updated.text
    assert status(second, client_id, secret) == 400
    assert status(second, client_id, secret, "email") == 200

    # RFC 7592 §2.3: deleted through the second; the first kept it too.
    assert status(first, client_id, secret, "email") == 200
    registration_token = updated.json()["registration_access_token"]
    deleted = requests.delete(
        f"{second.url}/register/{client_id}", headers=bearer(registration_token), timeout=30
    )
    assert deleted.status_code == 204, deleted.text
    assert status(first, client_id, secret, "email") == 401


def redis_commands(idp: LiveIdp, action: Callable[[], object]) -> list[str]:
    """The commands the IdP's Redis received while ``action`` ran (MONITOR)."""
    from idp.state import idp as state

    with idp.app.app_context():
        redis = state().store.redis
    end = f"end-of-action-{secrets.token_hex(4)}"
    with redis.monitor() as monitor:
        action()
        redis.echo(end)
        seen: list[str] = []
        while end not in (command := str(monitor.next_command()["command"])):
            seen.append(command)
    return seen


def test_an_authorization_reads_its_clients_stamp_once(idp: LiveIdp) -> None:
    """Authlib's checks and the views ask for the client several times while
    authorising a returning user; each lookup would check the kept
    registration's stamp in Redis (a round trip), so the request looks it
    up once and uses what it read."""
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    login_through(idp, rp, browser, user)
    url, _ = rp.authorize_url()
    answers: list[requests.Response] = []

    commands = redis_commands(idp, lambda: answers.append(browser.go(url)))
    assert answers[0].status_code == 302 and "code=" in answers[0].headers["Location"]
    stamp_reads = [c for c in commands if f"client-stamp:{client_id}" in c]
    assert len(stamp_reads) == 1, stamp_reads
