"""E-mail and SMS senders against real servers: aiosmtpd, and an HTTP gateway
stand-in in this file. The outbox senders write what local development reads."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from idp.app import create_app
from idp.config import ConfigError, load_settings
from idp.extensions import dispose_pools
from idp.notify import (
    DeliveryError,
    HttpSmsGateway,
    OutboxEmailSender,
    OutboxSmsSender,
    SmtpEmailSender,
    compose,
    email_sender,
    sms_sender,
)
from tests.support.smtp import SmtpServer

FROM = "Freigabe <noreply@localhost>"
TO = "Jürgen Müller <juergen@example.org>"
SUBJECT = "Ihr Bestätigungscode für Freigabe"
TEXT = "Grüße aus Köln! Der Code lautet 482913. Straße, Maß, Öl, Übung, ärgerlich."
HTML = "<p>Grüße aus Köln! Der Code lautet <b>482913</b>.</p>"
NUMBER = "+49 170 1234567"
SMS_TEXT = "Ihr Code: 482913 & gültig 10 Min. - Grüße"
PRODUCTION = {
    "issuer": "https://login.example.org",
    "secret_key": "s" * 40,
    "key_encryption_key": "k" * 43,
}


def smtp_sender(server: SmtpServer, **options: Any) -> SmtpEmailSender:
    settings: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "from_address": FROM,
        "timeout": 5,
    }
    return SmtpEmailSender(**{**settings, **options})


# --- e-mail -----------------------------------------------------------------------


def test_smtp_delivers_utf8_mail(smtp_server: SmtpServer) -> None:
    smtp_sender(smtp_server).send(compose(TO, SUBJECT, TEXT, HTML, sender=FROM))

    received = smtp_server.wait_for("juergen@example.org")
    assert received["Subject"] == SUBJECT
    assert received["To"] == TO
    assert received["From"] == FROM
    assert received["Message-ID"].endswith("@localhost>")
    assert received["Date"]
    plain = received.get_body(preferencelist=("plain",))
    html = received.get_body(preferencelist=("html",))
    assert plain is not None and plain.get_content().strip() == TEXT
    assert html is not None and "<b>482913</b>" in html.get_content()
    (mail,) = smtp_server.mail_for("juergen@example.org")
    assert mail.mail_from == "noreply@localhost"


def test_smtp_logs_in_when_configured() -> None:
    server = SmtpServer(users={"idp": "s3cret-Passw0rd"}).start()
    try:
        sender = smtp_sender(server, username="idp", password="s3cret-Passw0rd")
        sender.send(compose("a@example.org", "Hallo", "Text", sender=FROM))
        server.wait_for("a@example.org")
        assert server.mail_for("a@example.org")[0].login == "idp"

        wrong = smtp_sender(server, username="idp", password="wrong")
        with pytest.raises(DeliveryError, match="SMTPAuthenticationError"):
            wrong.send(compose("b@example.org", "Hallo", "Text", sender=FROM))
        assert server.mail_for("b@example.org") == []
    finally:
        server.stop()


def test_starttls_is_never_skipped(smtp_server: SmtpServer) -> None:
    # The server offers no STARTTLS: the sender refuses to go on in clear.
    with pytest.raises(DeliveryError, match="SMTPNotSupportedError"):
        smtp_sender(smtp_server, security="starttls").send(
            compose("c@example.org", "Hallo", "Text", sender=FROM)
        )
    assert smtp_server.mail_for("c@example.org") == []


def test_an_unreachable_smtp_server_is_a_delivery_error(smtp_server: SmtpServer) -> None:
    port = smtp_server.port
    smtp_server.stop()
    with pytest.raises(DeliveryError, match="ConnectionRefusedError"):
        smtp_sender(smtp_server, port=port).send(compose("d@example.org", "x", "y", sender=FROM))


def test_compose_refuses_header_injection() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        compose("a@example.org", "Hallo\nBcc: evil@example.org", "x", sender=FROM)


def test_the_outbox_keeps_each_mail_as_an_eml_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="idp.notify")
    outbox = tmp_path / "outbox"
    sender = OutboxEmailSender(outbox, from_address=FROM)
    sender.send(compose(TO, SUBJECT, TEXT, sender=FROM))
    sender.send(compose("zweite@example.org", "Zweite", "Text", sender=FROM))

    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 2 and not list(outbox.glob(".*"))
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    first = next(m for m in parsed if m["Subject"] == SUBJECT)
    assert first["To"] == TO and first["From"] == FROM
    assert first.get_content().strip() == TEXT  # type: ignore[attr-defined]
    assert f"mail to juergen@example.org: {SUBJECT}" in caplog.messages


def test_compose_uses_the_configured_sender(tmp_path: Path) -> None:
    app = create_app(
        {"instance_path": str(tmp_path), "mail_from": "Freigabe Test <idp@example.org>"}
    )
    try:
        with app.app_context():
            message = compose("a@example.org", "Hallo", "Text")
            app.extensions["idp"].mailer.send(message)
        assert message["From"] == "Freigabe Test <idp@example.org>"
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    finally:
        with app.app_context():
            dispose_pools()
        app.extensions["idp"].store.close()


# --- SMS --------------------------------------------------------------------------


@dataclass
class GatewayRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)


@dataclass
class Gateway:
    """A small HTTP SMS gateway: records requests, answers with ``status``."""

    url: str
    status: int = 200
    requests: list[GatewayRequest] = field(default_factory=list)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    state: Gateway

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.requests.append(
                GatewayRequest(self.command, self.path, dict(self.headers.items()), body)
            )
            self.send_response(state.status)
            if 300 <= state.status < 400:
                self.send_header("Location", f"{state.url}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Gateway(url=f"http://localhost:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_the_gateway_gets_the_url_encoded_number_and_text(gateway: Gateway) -> None:
    sender = HttpSmsGateway(
        url=gateway.url + "/send?to={to}&text={text}", method="GET", token="gw-token", timeout=5
    )
    sender.send(NUMBER, SMS_TEXT)

    (request,) = gateway.requests
    assert request.method == "GET"
    # Percent-encoded: "+" and "&" in the values cannot change the query.
    assert "to=%2B49%20170%201234567&" in request.path
    assert request.query == {"to": [NUMBER], "text": [SMS_TEXT]}
    assert request.headers["Authorization"] == "Bearer gw-token"


def test_the_gateway_gets_a_json_body(gateway: Gateway) -> None:
    body = '{"recipient": "{to}", "message": "{text}", "flash": false}'
    HttpSmsGateway(url=gateway.url + "/api", method="POST", body=body, timeout=5).send(
        NUMBER, 'Code "7" \\ 482913'
    )
    (request,) = gateway.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "recipient": NUMBER,
        "message": 'Code "7" \\ 482913',
        "flash": False,
    }
    assert "Authorization" not in request.headers


def test_the_gateway_gets_a_form_body(gateway: Gateway) -> None:
    HttpSmsGateway(url=gateway.url + "/form", body="to={to}&text={text}", timeout=5).send(
        NUMBER, SMS_TEXT
    )
    (request,) = gateway.requests
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body.decode()) == {"to": [NUMBER], "text": [SMS_TEXT]}


@pytest.mark.parametrize("status", [500, 401, 302])
def test_a_gateway_refusal_is_a_delivery_error(gateway: Gateway, status: int) -> None:
    gateway.status = status
    sender = HttpSmsGateway(url=gateway.url + "/send?to={to}&text={text}", timeout=5)
    with pytest.raises(DeliveryError, match=str(status)):
        sender.send(NUMBER, SMS_TEXT)
    assert len(gateway.requests) == 1  # a redirect is not followed


def test_an_unreachable_gateway_is_a_delivery_error(gateway: Gateway) -> None:
    url = "http://127.0.0.1:1/send?to={to}&text={text}"
    with pytest.raises(DeliveryError, match="unreachable"):
        HttpSmsGateway(url=url, timeout=2).send(NUMBER, SMS_TEXT)


def test_the_sms_outbox_appends_a_line_and_logs_no_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="idp.notify")
    path = tmp_path / "outbox" / "sms.log"
    sender = OutboxSmsSender(path)
    sender.send(NUMBER, SMS_TEXT)
    sender.send("+491511111111", "Zeile eins\nZeile zwei")

    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["to"] for line in lines] == [NUMBER, "+491511111111"]
    assert [json.loads(line)["text"] for line in lines] == [SMS_TEXT, "Zeile eins\nZeile zwei"]
    assert f"sms to {NUMBER}" in caplog.messages
    assert not any("482913" in message for message in caplog.messages)


# --- choosing senders from the settings --------------------------------------------


def test_without_servers_configured_the_outboxes_are_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDP_CONFIG", raising=False)
    local = load_settings()
    assert isinstance(email_sender(local, tmp_path), OutboxEmailSender)
    assert isinstance(sms_sender(local, tmp_path), OutboxSmsSender)
    assert not caplog.records

    # Allowed in production too, but said at start.
    caplog.set_level(logging.WARNING, logger="idp")
    production = load_settings(PRODUCTION)
    email_sender(production, tmp_path)
    sms_sender(production, tmp_path)
    assert any("smtp_host is not set" in m for m in caplog.messages)
    assert any("sms_gateway_url is not set" in m for m in caplog.messages)


def test_configured_servers_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDP_CONFIG", raising=False)
    settings = load_settings(
        {
            **PRODUCTION,
            "smtp_host": "smtp.example.org",
            "smtp_security": "ssl",
            "smtp_port": 465,
            "sms_gateway_url": "https://sms.example.net/send?to={to}&text={text}",
            "sms_gateway_method": "GET",
        }
    )
    mailer = email_sender(settings, tmp_path)
    assert isinstance(mailer, SmtpEmailSender)
    assert (mailer.host, mailer.port, mailer.security) == ("smtp.example.org", 465, "ssl")
    sms = sms_sender(settings, tmp_path)
    assert isinstance(sms, HttpSmsGateway) and sms.method == "GET"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"smtp_security": "tls"}, "smtp_security"),
        ({"smtp_port": 0}, "smtp_port"),
        ({"mail_from": "nobody"}, "mail_from"),
        ({"push_contact": "http://example.org"}, "push_contact"),
        ({"push_timeout": 0}, "push_timeout"),
        ({"sms_gateway_url": "http://sms.example.net/?to={to}"}, "https outside localhost"),
        ({"sms_gateway_url": "https://sms.example.net/send"}, "must contain {to}"),
        (
            {
                "sms_gateway_url": "https://sms.example.net/?to={to}",
                "sms_gateway_method": "GET",
                "sms_gateway_body": "x",
            },
            "needs sms_gateway_method = POST",
        ),
        (
            {"smtp_host": "smtp.example.org", "smtp_security": "none", "smtp_username": "u"},
            "in clear",
        ),
        ({"smtp_username": "idp", "smtp_password": "pässword"}, "must be ASCII"),
    ],
)
def test_unusable_notification_settings_are_refused(
    overrides: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDP_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=message):
        load_settings({**PRODUCTION, **overrides})


def test_app_wires_the_senders(tmp_path: Path) -> None:
    app: Flask = create_app({"instance_path": str(tmp_path)})
    try:
        idp = app.extensions["idp"]
        assert isinstance(idp.mailer, OutboxEmailSender)
        assert idp.mailer.outbox == tmp_path / "outbox"
        assert isinstance(idp.sms, OutboxSmsSender)
        assert idp.sms.path == tmp_path / "outbox" / "sms.log"
    finally:
        with app.app_context():
            dispose_pools()
        idp.store.close()
