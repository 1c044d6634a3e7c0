"""Web Push sender (RFC 8030, RFC 8291, RFC 8292).

The only module of ours that imports pywebpush (STYLE rule 4): it translates
everything pywebpush and requests raise into a ``PushResult``, so a push that
cannot be delivered never breaks the login that sent it. Payloads stay small
and opaque (``{"type": "approval", "id": ...}``): the device fetches the
details over its authenticated API. Neither payloads nor subscription keys are
logged; the endpoint's host and the push service's status are.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from py_vapid import Vapid02

from ..config import Settings
from .keys import VapidKeySource, VapidKeyStore
from .subscriptions import InvalidSubscription, Subscription, parse_subscription

if TYPE_CHECKING:
    from pywebpush import WebPushException

log = logging.getLogger(__name__)

# RFC 8030 §5.3.
URGENCIES = ("very-low", "low", "normal", "high")
# RFC 8030 §5.4: at most 32 characters of the base64url alphabet.
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# RFC 8292 §2: "exp" no more than 24 hours ahead; we stay well inside it.
VAPID_TOKEN_LIFETIME = 12 * 3600
# RFC 8291 §4: one 4096-byte record; less its 86-byte header, the padding
# delimiter and the 16-byte tag.
MAX_PAYLOAD_BYTES = 4096 - 86 - 1 - 16
# The push service answers that the subscription has expired or was removed
# (RFC 8030 §7.3 for 410; push services use 404 alike): drop it.
GONE_STATUSES = (404, 410)


def load_sender() -> None:
    """Import pywebpush now rather than at the first push.

    It is imported where a push is sent: with aiohttp under it, it is a tenth
    of the time an ``idp`` command takes to start, and most commands send
    none. The server loads it in its master before forking (``idp.serving``),
    so the workers share it rather than each importing its own copy.
    """
    import pywebpush  # noqa: F401


@dataclass(frozen=True)
class PushResult:
    delivered: bool
    # The subscription is no longer valid: the caller drops it.
    gone: bool = False
    status: int | None = None
    # A short, log-safe reason when not delivered.
    error: str | None = None


def vapid_subject(contact: str, issuer_host: str) -> str:
    """The VAPID ``sub`` (RFC 8292 §2.1): a mailto: or https: URL."""
    contact = contact.strip()
    if contact.startswith(("mailto:", "https://")):
        return contact
    if contact:
        return f"mailto:{contact}"
    return f"mailto:admin@{issuer_host or 'localhost'}"


class PushService:
    def __init__(
        self,
        *,
        keys: VapidKeySource,
        subject: str,
        timeout: float,
        allow_loopback: bool = True,
    ) -> None:
        self._keys = keys
        self._subject = subject
        self._timeout = timeout
        self._allow_loopback = allow_loopback

    @classmethod
    def from_settings(cls, settings: Settings, *, encryption_key: bytes) -> PushService:
        host = "localhost" if settings.is_local else settings.issuer_host
        if not settings.is_local and not settings.push_contact:
            log.warning(
                "push_contact is not set: push services are told to write to %s",
                vapid_subject("", host),
            )
        return cls(
            keys=VapidKeyStore(encryption_key=encryption_key),
            subject=vapid_subject(settings.push_contact, host),
            timeout=settings.push_timeout,
            # Only a development issuer sends to a push service on loopback.
            allow_loopback=settings.is_local,
        )

    def ensure_key(self) -> None:
        """Make the VAPID key if the deployment has none yet."""
        self._keys.ensure()

    def public_key(self) -> str:
        """The ``applicationServerKey`` for ``PushManager.subscribe()`` (RFC 8292 §3.2)."""
        return self._keys.current().public_key

    def parse_subscription(self, data: Mapping[str, Any] | str | bytes) -> Subscription:
        """``parse_subscription`` with this deployment's loopback policy."""
        return parse_subscription(data, allow_loopback=self._allow_loopback)

    def send(
        self,
        subscription: Mapping[str, Any],
        payload: Mapping[str, Any],
        *,
        ttl: int,
        urgency: str = "high",
        topic: str | None = None,
    ) -> PushResult:
        """Encrypt ``payload`` (aes128gcm) for ``subscription`` and post it.

        ``ttl``: seconds the push service may hold the message for an
        offline device (RFC 8030 §5.2); pass the lifetime of what the
        message announces. Wrong arguments are programming errors and raise
        ValueError; everything that can go wrong on the way is a PushResult.
        """
        data = _encode_payload(payload, ttl=ttl, urgency=urgency, topic=topic)
        try:
            target = self.parse_subscription(subscription)
        except InvalidSubscription as exc:
            log.warning("push not sent, the stored subscription is invalid: %s", exc)
            return PushResult(delivered=False, gone=True, error="invalid_subscription")
        try:
            key = self._keys.current()
        except Exception:
            log.exception("push not sent: no usable VAPID key")
            return PushResult(delivered=False, error="vapid_key_unavailable")

        # A fresh claims dict for every message: pywebpush writes into the one
        # it is given, and a reused one would carry another endpoint's "aud".
        claims: dict[str, str | int] = {
            "sub": self._subject,
            "aud": target.origin,
            "exp": int(time.time()) + VAPID_TOKEN_LIFETIME,
        }
        headers: dict[str, str | int | float] = {"Urgency": urgency}
        if topic is not None:
            headers["Topic"] = topic
        from pywebpush import WebPushException, webpush

        session = requests.Session()
        # Push services do not redirect; following one could aim us anywhere.
        session.max_redirects = 0
        try:
            response = webpush(
                target.as_dict(),
                data=data,
                vapid_private_key=Vapid02(key.private_key),
                vapid_claims=claims,
                content_encoding="aes128gcm",
                timeout=self._timeout,
                ttl=ttl,
                headers=headers,
                requests_session=session,
            )
        except WebPushException as exc:
            return self._refused(target, exc)
        except requests.Timeout:
            log.warning("push to %s: no answer within %ss", target.host, self._timeout)
            return PushResult(delivered=False, error="timeout")
        except requests.RequestException as exc:
            log.warning("push to %s failed: %s", target.host, type(exc).__name__)
            return PushResult(delivered=False, error="network_error")
        except Exception:
            log.exception("push to %s failed", target.host)
            return PushResult(delivered=False, error="internal_error")
        finally:
            session.close()
        status = getattr(response, "status_code", None)
        log.info("push to %s: %s", target.host, status)
        return PushResult(delivered=True, status=status)

    def _refused(self, target: Subscription, exc: WebPushException) -> PushResult:
        response = exc.response
        status = getattr(response, "status_code", None)
        if status is None:
            log.warning("push to %s not sent: %s", target.host, exc.message)
            return PushResult(delivered=False, error="push_error")
        # The push service's own words help tell a key mismatch from a bad "sub".
        reason = (getattr(response, "text", "") or "")[:200]
        log.warning("push to %s: %s %r", target.host, status, reason)
        gone = status in GONE_STATUSES
        return PushResult(
            delivered=False,
            gone=gone,
            status=status,
            error="subscription_gone" if gone else f"push_service_{status}",
        )


def _encode_payload(
    payload: Mapping[str, Any], *, ttl: int, urgency: str, topic: str | None
) -> str:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
        raise ValueError("ttl must be a number of seconds, 0 or more")
    if urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {', '.join(URGENCIES)}")
    if topic is not None and not _TOPIC.match(topic):
        raise ValueError("topic must be 1 to 32 characters of the base64url alphabet")
    data = json.dumps(dict(payload), separators=(",", ":"), ensure_ascii=False)
    if len(data.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"push payload exceeds {MAX_PAYLOAD_BYTES} bytes")
    return data
