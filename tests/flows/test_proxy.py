"""Behind reverse proxies: which address is the client's.

Clients on loopback connect from distinct source addresses (127.0.0.2,
127.0.0.3, ...; all of 127.0.0.0/8 is loopback on Linux), so the IdP sees
different peers. A test client that sends ``X-Forwarded-For`` plays either a
proxy that passes on a client's address or a client that forges one.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import signal
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from ..support.ports import free_port
from .conftest import PASSWORD, LiveIdp, start_idp
from .helpers import Browser
from .test_approvals import enrolled, match_code, mfa_client, to_waiting_page
from .test_serve import wait_for

# What a client may send to pass for someone else.
FORGED = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "X-Real-IP": "203.0.113.9",
    "Forwarded": "for=203.0.113.9;proto=https",
}


class SourceAddress(HTTPAdapter):
    """Connections from a given local address (127.0.0.x: another client)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(address: str, **headers: str) -> requests.Session:
    session = requests.Session()
    adapter = SourceAddress(address)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({name.replace("_", "-"): value for name, value in headers.items()})
    return session


def browser_from(issuer: str, address: str, **headers: str) -> Browser:
    return Browser(issuer, session=session_from(address, **headers))


def via_tls(forwarded_for: str) -> dict[str, str]:
    """The headers a TLS proxy adds (the README's nginx example)."""
    return {"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"}


def fail_logins(browser: Browser, count: int, expected: int = 401) -> None:
    """``count`` password logins with unknown identifiers (no account limit)."""
    for _ in range(count):
        page = browser.go(browser.issuer + "/login")
        failed = browser.sign_in(page, "nobody-" + secrets.token_hex(4), "wrong-password")
        assert failed.status_code == expected, failed.text[:300]


def sign_in(browser: Browser, identifier: str) -> requests.Response:
    return browser.sign_in(browser.go(browser.issuer + "/login"), identifier, PASSWORD)


def ips(idp: LiveIdp, event_type: str) -> list[str | None]:
    return [event.ip for event in sorted(idp.events(event_type), key=lambda event: event.id)]


# --- idp serve (gunicorn), no trusted proxies ------------------------------------------


def settings_for_serve(backend_overrides: dict[str, Any]) -> dict[str, Any]:
    """Settings for ``idp serve`` on a test's backend. An in-process app with
    the same settings (``start_idp``), started only while ``idp serve`` is not
    running, seeds the database and reads the audit log."""
    return {
        **backend_overrides,
        "issuer": f"http://localhost:{free_port()}",
        "secret_key": secrets.token_urlsafe(48),
        "key_encryption_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }


@pytest.fixture
def serve_settings(backend_overrides: dict[str, Any]) -> dict[str, Any]:
    return settings_for_serve(backend_overrides)


def serve(
    settings: dict[str, Any], *args: str, port: int | None = None, **env: str
) -> subprocess.Popen[str]:
    """``idp serve`` (gunicorn) with these settings, on the issuer's port
    unless another is given (behind a proxy)."""
    port = port or urlsplit(settings["issuer"]).port
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    environ.update({f"IDP_{name.upper()}": str(value) for name, value in settings.items() if value})
    environ.update(env)
    process = subprocess.Popen(
        [sys.executable, "-m", "idp", "serve", "--port", str(port), "--no-migrate",
         "--workers", "1", "--threads", "8", *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/.well-known/openid-configuration", process)
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen[str]) -> str:
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    return output


def test_without_trusted_proxies_forged_forwarding_headers_change_nothing_under_serve(
    serve_settings: dict[str, Any],
) -> None:
    settings = serve_settings
    seeder = start_idp(settings)
    try:
        user = seeder.add_user(username="erika")
    finally:
        seeder.stop()
    issuer = settings["issuer"]
    process = serve(settings, IDP_LOGIN_FAILURES_PER_IP="3", IDP_ACCESS_LOG="true")
    try:
        # From 127.0.0.1, which gunicorn by default believes about the scheme:
        # a forged "X-Forwarded-Proto: https" must not make the app think the
        # request came over TLS (its forms would then want a Referer).
        forger = browser_from(issuer, "127.0.0.1", **FORGED)
        signed_in = sign_in(forger, "erika")
        assert signed_in.status_code == 200, signed_in.text[:300]
        assert forger.last is not None and forger.last.url.endswith("/account")

        # Failures count for the socket's address, whatever the headers say.
        fail_logins(forger, 3)
        forger.session.headers["X-Forwarded-For"] = "198.51.100.77"
        fail_logins(forger, 1, expected=429)
        # Another address is not blocked.
        other = browser_from(issuer, "127.0.0.4")
        assert sign_in(other, user.access_number).status_code == 200
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    # The access log (asked for): the socket's address, the path without its query.
    logged = re.findall(r'^(\S+) "(\w+) (\S+)" (\d+) ', output, re.MULTILINE)
    assert ("127.0.0.1", "POST", "/login", "401") in logged, output[-2000:]
    assert all("?" not in path for _, _, path, _ in logged)

    reader = start_idp(settings)
    try:
        assert ips(reader, "login") == ["127.0.0.1", "127.0.0.4"]
        assert ips(reader, "login_failed") == ["127.0.0.1"] * 3
    finally:
        reader.stop()


# --- trusted_proxies --------------------------------------------------------------------


def test_a_hop_count_takes_the_client_from_the_proxy(idp_factory: Any) -> None:
    idp = idp_factory(trusted_proxies=1, login_failures_per_ip=3)
    user, device = enrolled(idp)
    rp = mfa_client(idp)

    # One TLS proxy in front, appending the address it saw to what came in.
    attacker = browser_from(idp.url, "127.0.0.2", **via_tls("203.0.113.9, 198.51.100.1"))
    fail_logins(attacker, 3)
    fail_logins(attacker, 1, expected=429)

    # Another client through the same proxy is not blocked, and the device is
    # shown its address when asked to confirm the sign-in.
    erika = browser_from(idp.url, "127.0.0.2", **via_tls("198.51.100.2"))
    _, page, _ = to_waiting_page(idp, rp, user, browser=erika)
    [approval] = device.approvals()
    assert approval["ip"] == "198.51.100.2"
    # The device's own requests through the proxy: its address.
    device.http = session_from("127.0.0.2", X_Forwarded_For="198.51.100.3")
    assert device.answer(approval["id"], "approve", match_code(page)).status_code == 200

    assert ips(idp, "login_failed") == ["198.51.100.1"] * 3
    assert ips(idp, "login") == ["198.51.100.2"]
    assert ips(idp, "approval_requested") == ["198.51.100.2"]
    assert ips(idp, "approval_approved") == ["198.51.100.3"]


def test_trusted_proxy_addresses_name_the_client_and_nobody_else_is_believed(
    idp_factory: Any,
) -> None:
    idp = idp_factory(trusted_proxies=["127.0.0.2", "10.0.0.0/8"], login_failures_per_ip=3)
    user, device = enrolled(idp)
    rp = mfa_client(idp)

    # A proxy at 127.0.0.2 behind another at 10.1.2.3: the address left of
    # the trusted ones is the client; what the client put further left is not.
    attacker = browser_from(idp.url, "127.0.0.2", **via_tls("203.0.113.9, 198.51.100.1, 10.1.2.3"))
    fail_logins(attacker, 3)
    fail_logins(attacker, 1, expected=429)

    # Not from a trusted proxy: X-Forwarded-For is ignored, and the failures
    # count for the peer, not for the client named (who signs in below).
    forger = browser_from(idp.url, "127.0.0.3", X_Forwarded_For="2001:db8::2", **FORGED)
    fail_logins(forger, 3)
    forger.session.headers["X-Forwarded-For"] = "192.0.2.55"
    fail_logins(forger, 1, expected=429)

    # A malformed entry: the last trusted hop (10.1.2.3) is the client.
    odd = browser_from(idp.url, "127.0.0.2", X_Forwarded_For="2001:db8::9, not-an-ip, 10.1.2.3")
    fail_logins(odd, 1)

    erika = browser_from(idp.url, "127.0.0.2", **via_tls("2001:db8::2"))
    to_waiting_page(idp, rp, user, browser=erika)
    [approval] = device.approvals()
    assert approval["ip"] == "2001:db8::2"

    assert ips(idp, "login_failed") == ["198.51.100.1"] * 3 + ["127.0.0.3"] * 3 + ["10.1.2.3"]
    assert ips(idp, "login") == ["2001:db8::2"]
    assert ips(idp, "approval_requested") == ["2001:db8::2"]
