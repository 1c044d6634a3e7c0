"""A real SMTP server for the tests: aiosmtpd on a free loopback port.

Every message it accepts is parsed into an ``email.message.EmailMessage`` and
kept; ``wait_for(address)`` hands out the next one for that recipient (and,
with ``subject``, of that kind: other mails stay for their own ``wait_for``).
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .ports import free_port


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    login: str | None


@dataclass
class SmtpServer:
    """``SmtpServer(users={"name": "password"})`` also offers AUTH (in clear:
    loopback only); ``ReceivedMail.login`` says who sent a message."""

    users: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0
    received: list[ReceivedMail] = field(default_factory=list)
    _taken: set[int] = field(default_factory=set)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.port = free_port()
        options: dict[str, Any] = {"enable_SMTPUTF8": True}
        if self.users:
            # Offered without TLS (loopback only); not required, so aiosmtpd
            # does not warn, and a failed login still refuses the client.
            options.update(authenticator=self._authenticate, auth_require_tls=False)
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, to: str, timeout: float = 5.0, *, subject: str = "") -> EmailMessage:
        """The next message for ``to`` (whose Subject starts with ``subject``) not
        handed out before; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index, mail in enumerate(self.received):
                    if index not in self._taken and _matches(mail, to, subject):
                        self._taken.add(index)
                        return mail.message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no mail for {to} {subject!r} within {timeout}s")
                self._changed.wait(remaining)

    def mail_for(self, to: str, *, subject: str = "") -> list[ReceivedMail]:
        with self._changed:
            return [m for m in self.received if _matches(m, to, subject)]

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(login) == password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    def _record(self, mail: ReceivedMail) -> None:
        with self._changed:
            self.received.append(mail)
            self._changed.notify_all()


def _matches(mail: ReceivedMail, to: str, subject: str) -> bool:
    return to.lower() in map(str.lower, mail.rcpt_tos) and str(
        mail.message.get("Subject", "")
    ).startswith(subject)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data if isinstance(session.auth_data, str) else None
        self._server._record(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=message,
                login=login,
            )
        )
        return "250 OK"
