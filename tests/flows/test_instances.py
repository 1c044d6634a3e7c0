"""Two ``idp serve`` instances on one PostgreSQL and one Redis share all state:
a login on one is continued, redeemed, refreshed and revoked on the other."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ..support.ports import free_port
from .conftest import PASSWORD, start_idp
from .helpers import Browser, RelyingParty, query
from .test_serve import wait_for


@pytest.fixture
def shared_backend(postgres_server: Any, redis_server: Any) -> Iterator[dict[str, str]]:
    name = postgres_server.create_database()
    client = redis_server.client(15)
    client.flushdb()
    client.close()
    yield {
        "IDP_DATABASE_URL": postgres_server.url(name),
        "IDP_REDIS_URL": redis_server.url(15),
        "IDP_SECRET_KEY": secrets.token_urlsafe(48),
        "IDP_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    postgres_server.drop_database(name)


def serve(port: int, env: dict[str, str], instance: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "idp", "serve", "--port", str(port), "--no-migrate",
         "--workers", "1", "--threads", "4"],
        env={**os.environ, **env, "IDP_INSTANCE_PATH": str(instance)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip


def test_two_instances_share_sessions_codes_tokens_and_keys(
    shared_backend: dict[str, str], tmp_path: Path
) -> None:
    port_a, port_b = free_port(), free_port()
    issuer = f"http://localhost:{port_a}"
    env = {**shared_backend, "IDP_ISSUER": issuer}
    # Register the user and client through one in-process app on the same backend.
    seeder = start_idp(
        {
            "issuer": issuer,
            "instance_path": str(tmp_path / "seed"),
            "database_url": env["IDP_DATABASE_URL"],
            "redis_url": env["IDP_REDIS_URL"],
            "secret_key": env["IDP_SECRET_KEY"],
            "key_encryption_key": env["IDP_KEY_ENCRYPTION_KEY"],
        }
    )
    try:
        user = seeder.add_user(username="shared")
        client_id, secret = seeder.add_client(first_party=True)
    finally:
        seeder.stop()
    # Both instances start at once on a database without signing keys.
    processes = [serve(port_a, env, tmp_path / "a"), serve(port_b, env, tmp_path / "b")]
    try:
        a, b = issuer, f"http://localhost:{port_b}"
        wait_for(f"{a}/.well-known/openid-configuration", processes[0])
        wait_for(f"{b}/.well-known/openid-configuration", processes[1])

        # Authorize and sign in on A; the login transaction lives in Redis,
        # the session in PostgreSQL.
        browser = Browser(a)
        rp_a = RelyingParty(a, client_id, secret)
        url, req = rp_a.authorize_url()
        page = browser.sign_in(browser.go(url), "shared", PASSWORD)
        params = query(page.headers["Location"])
        assert params["iss"] == issuer

        # Redeem the code on B, validate the ID token against A's JWKS.
        rp_b = RelyingParty(b, client_id, secret)
        tokens = rp_b.redeem(params["code"], req["verifier"]).json()
        claims = rp_a.validate_id_token(tokens["id_token"], req["nonce"])
        assert claims["sub"] == user.sub and claims["iss"] == issuer
        # A replay of the code on A is refused: the code was consumed on B.
        assert rp_a.redeem(params["code"], req["verifier"]).json()["error"] == "invalid_grant"

        # Userinfo on A with the access token issued by B: it was revoked
        # by the replay above (RFC 9700 §4.5.3.1), so A refuses it too.
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert requests.get(f"{a}/userinfo", headers=bearer, timeout=10).status_code == 401

        # A fresh login: refresh on A, rotate, reuse detected on B.
        url, req = rp_a.authorize_url()
        page = browser.go(url)  # the session cookie works on A ...
        params = query(page.headers["Location"])
        fresh = rp_b.redeem(params["code"], req["verifier"]).json()
        bearer = {"Authorization": f"Bearer {fresh['access_token']}"}
        assert requests.get(f"{a}/userinfo", headers=bearer, timeout=10).json()["sub"] == user.sub
        rotated = rp_a.token(grant_type="refresh_token", refresh_token=fresh["refresh_token"])
        assert rotated.status_code == 200
        reused = rp_b.token(grant_type="refresh_token", refresh_token=fresh["refresh_token"])
        assert reused.json()["error"] == "invalid_grant"

        # ... and on B (same cookie host): prompt=none finds the session.
        url, _ = RelyingParty(b, client_id, secret).authorize_url(prompt="none")
        on_b = Browser(b, session=browser.session).go(url)
        assert "code=" in on_b.headers["Location"]

        # Both instances publish the same keys: one active key per algorithm,
        # even though both started on an empty key table.
        jwks_a = requests.get(f"{a}/jwks.json", timeout=10).json()
        jwks_b = requests.get(f"{b}/jwks.json", timeout=10).json()
        assert jwks_a == jwks_b
        keys = json.loads(run_cli(env, tmp_path, "keys", "list", "--json"))
        assert sorted(k["alg"] for k in keys if k["state"] == "active") == ["ES256", "RS256"]
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGINT)
        for process in processes:
            output, _ = process.communicate(timeout=30)
            assert process.returncode == 0, output


def run_cli(env: dict[str, str], tmp_path: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "idp", *args],
        env={**os.environ, **env, "IDP_INSTANCE_PATH": str(tmp_path / "cli")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout
