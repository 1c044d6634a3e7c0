"""E-mail: one small interface, an SMTP sender, and an outbox for development.

Callers build an ``email.message.EmailMessage`` (``compose`` sets the sender,
date and message id) with the text in the user's language, and hand it to
``idp().mailer.send``.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import smtplib
import ssl
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Literal, Protocol

from flask import current_app

from .errors import DeliveryError

log = logging.getLogger(__name__)

SmtpSecurity = Literal["starttls", "ssl", "none"]


class EmailSender(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand the message on, or raise DeliveryError."""
        ...


def compose(
    to: str, subject: str, text: str, html: str | None = None, *, sender: str | None = None
) -> EmailMessage:
    """A message from ``mail_from`` (or ``sender``): plain text, optionally with
    an HTML alternative. UTF-8 throughout."""
    if sender is None:
        sender = current_app.extensions["idp"].settings.mail_from
    for value in (to, subject):
        if "\n" in value or "\r" in value:
            raise ValueError("line breaks in a mail header")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def recipients(message: EmailMessage) -> list[str]:
    fields = [str(value) for name in ("To", "Cc", "Bcc") for value in message.get_all(name, [])]
    return [address for _name, address in getaddresses(fields) if address]


class SmtpEmailSender:
    """Sends through an SMTP server: STARTTLS (default), implicit TLS, or plain
    (``none``, for a relay on the same host). Certificates are verified."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: SmtpSecurity,
        from_address: str,
        username: str = "",
        password: str = "",
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.from_address = from_address
        self._username = username
        self._password = password
        self._timeout = timeout

    def send(self, message: EmailMessage) -> None:
        if "From" not in message:
            message["From"] = self.from_address
        envelope_from = parseaddr(str(message["From"]))[1] or parseaddr(self.from_address)[1]
        to = recipients(message)
        if not to:
            raise ValueError("the message has no recipient")
        try:
            with self._connect() as smtp:
                if self._username:
                    smtp.login(self._username, self._password)
                smtp.send_message(message, from_addr=envelope_from, to_addrs=to)
        except (smtplib.SMTPException, OSError) as exc:
            log.warning(
                "mail to %s via %s:%s failed: %s",
                ", ".join(to),
                self.host,
                self.port,
                type(exc).__name__,
            )
            raise DeliveryError(f"SMTP delivery failed ({type(exc).__name__})") from exc
        log.info("mail to %s via %s:%s", ", ".join(to), self.host, self.port)

    @functools.cached_property
    def _tls(self) -> ssl.SSLContext:
        # Made once: loading the system's CA certificates takes longer than
        # sending a message to a local relay.
        return ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self._timeout, context=self._tls)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self._timeout)
        try:
            if self.security == "starttls":
                smtp.ehlo()
                # Refuses (SMTPNotSupportedError) rather than going on in clear.
                smtp.starttls(context=self._tls)
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp


class OutboxEmailSender:
    """Writes each message as ``<outbox>/<time>-<random>.eml`` (local development)."""

    def __init__(self, outbox: Path, *, from_address: str) -> None:
        self.outbox = outbox
        self.from_address = from_address
        self._lock = threading.Lock()

    def send(self, message: EmailMessage) -> None:
        if "From" not in message:
            message["From"] = self.from_address
        self.outbox.mkdir(parents=True, exist_ok=True)
        name = f"{_timestamp()}-{secrets.token_hex(4)}.eml"
        partial = self.outbox / f".{name}.partial"
        # Written aside, then renamed: whoever watches the folder sees whole files.
        with self._lock:
            partial.write_bytes(message.as_bytes())
            os.replace(partial, self.outbox / name)
        log.info("mail to %s: %s", ", ".join(recipients(message)), message["Subject"])


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
