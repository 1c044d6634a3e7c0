"""E-mail and SMS behind small interfaces (STYLE rule 5).

``create_app`` builds one sender of each kind from the settings: SMTP and an
HTTP SMS gateway when configured, otherwise the outbox under the instance
folder, which is what local development and the demo use.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from pathlib import Path

from ..config import Settings
from ..extensions import after_commit
from .email import EmailSender, OutboxEmailSender, SmtpEmailSender, compose, recipients
from .errors import DeliveryError
from .sms import HttpSmsGateway, OutboxSmsSender, SmsSender

log = logging.getLogger(__name__)

__all__ = [
    "DeliveryError",
    "EmailSender",
    "HttpSmsGateway",
    "OutboxEmailSender",
    "OutboxSmsSender",
    "SmsSender",
    "SmtpEmailSender",
    "compose",
    "email_sender",
    "recipients",
    "send_after_commit",
    "sms_sender",
]


def outbox_path(instance_path: Path) -> Path:
    return instance_path / "outbox"


def email_sender(settings: Settings, instance_path: Path) -> EmailSender:
    if settings.smtp_host:
        return SmtpEmailSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            from_address=settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout,
        )
    outbox = outbox_path(instance_path)
    if not settings.is_local:
        log.warning("smtp_host is not set: e-mails are only written to %s", outbox)
    return OutboxEmailSender(outbox, from_address=settings.mail_from)


def sms_sender(settings: Settings, instance_path: Path) -> SmsSender:
    if settings.sms_gateway_url:
        return HttpSmsGateway(
            url=settings.sms_gateway_url,
            method=settings.sms_gateway_method,
            body=settings.sms_gateway_body,
            token=settings.sms_gateway_token,
            timeout=settings.sms_gateway_timeout,
        )
    path = outbox_path(instance_path) / "sms.log"
    if not settings.is_local:
        log.warning("sms_gateway_url is not set: text messages are only written to %s", path)
    return OutboxSmsSender(path)


def send_after_commit(mailer: EmailSender, message: EmailMessage) -> None:
    """Mail ``message`` once the current transaction commits (never if it
    rolls back). A mail that cannot be sent is logged; the change it was
    about stands."""

    def deliver() -> None:
        try:
            mailer.send(message)
        except DeliveryError:
            log.warning("a notice e-mail could not be sent")

    after_commit(deliver)
