"""The README's TLS proxy, proven: ``config/nginx.example.conf`` in a real
nginx (the Debian package) in front of ``idp serve`` with
``IDP_TRUSTED_PROXIES=1``. Clients come from distinct loopback addresses;
the limits, the audit log and the device see each one's own address, and
the event streams reach the browser and the device through the proxy."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..conftest import missing_service
from ..support.ports import free_port
from ..support.waiting import wait_until
from .conftest import PASSWORD, start_idp
from .devices import SoftDevice
from .helpers import RelyingParty, query
from .test_approvals import match_code, proceed
from .test_proxy import (
    browser_from,
    fail_logins,
    ips,
    serve,
    session_from,
    settings_for_serve,
    stop,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "nginx.example.conf"


def replace_once(text: str, old: str, new: str) -> str:
    """The example's deployment-specific parts, swapped for the test's; each
    must be there exactly once, so the example cannot drift from the test."""
    assert text.count(old) == 1, f"{old!r} appears {text.count(old)} times in {EXAMPLE.name}"
    return text.replace(old, new)


def certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for localhost signed by it: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: str, key: Any, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            # Key identifiers: strict verification (Python 3.13's default) wants them.
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                critical=False,
            )
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )  # fmt: skip
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("Freigabe test CA", "Freigabe test CA", ca_key, ca_key, ca=True)
    leaf = build("localhost", "Freigabe test CA", key, ca_key, ca=False)
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited: {log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    wait_until(listening, timeout=20, what="nginx to come up")


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Any]:
    """Start nginx with the example for (https port, upstream port)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(binary, os.X_OK):
        missing_service("nginx is not installed (Debian package nginx)")
    started: list[subprocess.Popen[bytes]] = []
    folder = tmp_path / "nginx"
    folder.mkdir()

    def start(port: int, upstream: int) -> Path:
        ca, cert, key = certificate(folder)
        site = EXAMPLE.read_text()
        for old, new in [
            ("server 127.0.0.1:5000;", f"server 127.0.0.1:{upstream};"),
            ("    listen 80;\n", f"    listen 127.0.0.1:{free_port()};\n"),
            ("    listen [::]:80;\n", ""),
            ("    listen 443 ssl;\n", f"    listen 127.0.0.1:{port} ssl;\n"),
            ("    listen [::]:443 ssl;\n", ""),
            ("/etc/letsencrypt/live/login.example.org/fullchain.pem", str(cert)),
            ("/etc/letsencrypt/live/login.example.org/privkey.pem", str(key)),
        ]:
            site = replace_once(site, old, new)
        site = site.replace("server_name login.example.org;", "server_name localhost;")
        (folder / "freigabe.conf").write_text(site)
        temp = "\n".join(
            f"    {kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (folder / "nginx.conf").write_text(
            f"daemon off;\n"
            f"pid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'} info;\n"
            # As root, workers would run as nobody, who cannot enter tmp_path.
            + ("user root;\n" if os.geteuid() == 0 else "")
            + "worker_processes 1;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"    access_log {folder / 'access.log'};\n"
            f"{temp}\n"
            f"    include {folder / 'freigabe.conf'};\n"
            "}\n"
        )
        log = folder / "error.log"
        process = subprocess.Popen(
            [binary, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(process)
        wait_for_port(port, process, log)
        return ca

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_behind_the_example_nginx_each_client_is_itself(
    backend_overrides: dict[str, Any], nginx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, upstream = free_port(), free_port()
    issuer = f"https://localhost:{port}"
    settings = {**settings_for_serve(backend_overrides), "issuer": issuer}
    seeder = start_idp(settings)
    try:
        user = seeder.add_user(username="erika", phone_number="+49 151 1234567")
        client_id, secret = seeder.add_client(require_mfa=True, first_party=True)
    finally:
        seeder.stop()
    ca = nginx(port, upstream)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    process = serve(
        settings,
        *("--host", "127.0.0.1"),
        port=upstream,
        IDP_TRUSTED_PROXIES="1",  # as the example says
        IDP_LOGIN_FAILURES_PER_IP="3",
    )
    try:
        discovery = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
        assert discovery.json()["issuer"] == issuer

        # The phone enrols and listens for approvals through the proxy.
        device = SoftDevice(issuer, http=session_from("127.0.0.5"))
        device.enrol(user.access_number, PASSWORD, settings["instance_path"])
        pushed: list[str] = []
        listening = threading.Event()

        def listen() -> None:
            try:
                with device.call("GET", "/events", stream=True) as stream:
                    for line in stream.iter_lines(decode_unicode=True):
                        listening.set()
                        if line.startswith("data:"):
                            pushed.append(json.loads(line[5:])["id"])
                            return
            except requests.RequestException:
                return  # the assertions below tell what is missing

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert listening.wait(10), "the device's event stream did not open through nginx"

        # Someone guessing from 127.0.0.2, claiming to be Erika (127.0.0.3):
        # nginx appends the real address, and only that one is blocked.
        attacker = browser_from(issuer, "127.0.0.2", X_Forwarded_For="127.0.0.3")
        fail_logins(attacker, 3)
        fail_logins(attacker, 1, expected=429)

        # Erika at 127.0.0.3 signs in: the waiting page's event stream and the
        # device's get through the proxy at once; the device shows her address.
        rp = RelyingParty(issuer, client_id, secret)
        erika = browser_from(issuer, "127.0.0.3")
        url, request = rp.authorize_url()
        page = erika.sign_in(erika.go(url), user.access_number, PASSWORD)
        assert erika.last is not None and "/login/approval" in erika.last.url, page.text[:300]
        listener.join(15)
        [approval] = device.approvals()
        assert pushed == [approval["id"]]
        assert approval["ip"] == "127.0.0.3"

        events = re.search(r'data-events="([^"]+)"', page.text)
        assert events is not None
        statuses: list[str] = []
        with erika.session.get(
            issuer + events.group(1).replace("&amp;", "&"), stream=True, timeout=30
        ) as stream:
            lines = stream.iter_lines(decode_unicode=True)
            for line in lines:
                if line.startswith("data:"):
                    statuses.append(json.loads(line[5:])["status"])
                    break
            assert device.answer(approval["id"], "approve", match_code(page)).status_code == 200
            for line in lines:
                if line.startswith("data:"):
                    statuses.append(json.loads(line[5:])["status"])
                    break
        assert statuses == ["pending", "approved"]

        done = proceed(erika, page)
        assert done.status_code == 302 and done.headers["Location"].startswith(rp.redirect_uri)
        tokens = rp.redeem(query(done.headers["Location"])["code"], request["verifier"]).json()
        claims = rp.validate_id_token(tokens["id_token"], request["nonce"])
        assert claims["iss"] == issuer and "mfa" in claims["amr"]
    finally:
        output = stop(process)
    assert process.returncode == 0, output

    reader = start_idp(settings)
    try:
        assert ips(reader, "login_failed") == ["127.0.0.2"] * 3
        assert ips(reader, "login") == ["127.0.0.3"]
        assert ips(reader, "approval_requested") == ["127.0.0.3"]
        assert ips(reader, "approval_approved") == ["127.0.0.5"]
    finally:
        reader.stop()


def test_the_readme_shows_lines_of_the_example() -> None:
    readme = (EXAMPLE.parents[1] / "README.md").read_text()
    block = re.search(r"```nginx\n(.*?)```", readme, re.DOTALL)
    assert block is not None
    example = {line.strip() for line in EXAMPLE.read_text().splitlines()}
    for line in block.group(1).splitlines():
        if line.strip() and not line.strip().startswith("#"):
            assert line.strip() in example, line
