"""Web Push subscriptions as browsers hand them out (``PushSubscription.toJSON()``).

Checked when a device registers one, so a bad subscription is refused with a
clear error then, not discovered when a login waits for its push.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from ..encoding import b64url_decode, b64url_encode
from ..errors import IdpError

MAX_ENDPOINT_LENGTH = 2048
LOOPBACK_NAMES = {"localhost"}


class InvalidSubscription(IdpError):
    """A push subscription we cannot or will not send to; the message says why."""

    error = "invalid_subscription"
    status = 400
    # For the device API (JSON); says what is wrong with the caller's input.
    message = "The push subscription is not valid."


@dataclass(frozen=True)
class Subscription:
    """A validated subscription: where to send, and the keys to encrypt to (RFC 8291)."""

    endpoint: str
    # base64url (no padding) of the user agent's uncompressed P-256 point.
    p256dh: str
    # base64url (no padding) of the 16-byte authentication secret.
    auth: str = field(repr=False)

    @property
    def origin(self) -> str:
        """scheme://host[:port] of the endpoint: the VAPID ``aud`` (RFC 8292 §2)."""
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname or ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape browsers produce, for storing and for pywebpush."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def parse_subscription(
    data: Mapping[str, Any] | str | bytes, *, allow_loopback: bool = True
) -> Subscription:
    """Validate a subscription object (or its JSON text); raise InvalidSubscription.

    The endpoint must be https (RFC 8030 §8: push messages travel over TLS),
    or http to a loopback host, which is what a development push service
    listens on. ``allow_loopback=False`` refuses loopback hosts altogether (a
    production server should not be made to post to itself).
    """
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError:
            raise InvalidSubscription("push subscription is not JSON") from None
    if not isinstance(data, Mapping):
        raise InvalidSubscription("push subscription must be a JSON object")
    endpoint = _endpoint(data.get("endpoint"), allow_loopback=allow_loopback)
    keys = data.get("keys")
    if not isinstance(keys, Mapping):
        raise InvalidSubscription("push subscription has no keys")
    p256dh = _b64url_field(keys, "p256dh")
    auth = _b64url_field(keys, "auth")
    # RFC 8291 §3.1: the user agent's ECDH public key, an uncompressed P-256 point.
    if len(p256dh) != 65 or p256dh[0] != 0x04:
        raise InvalidSubscription("keys.p256dh must be an uncompressed P-256 point (65 bytes)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise InvalidSubscription("keys.p256dh is not a point on P-256") from None
    # RFC 8291 §3.2: the authentication secret is 16 octets.
    if len(auth) != 16:
        raise InvalidSubscription("keys.auth must be 16 bytes")
    return Subscription(endpoint=endpoint, p256dh=b64url_encode(p256dh), auth=b64url_encode(auth))


def _endpoint(value: object, *, allow_loopback: bool) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidSubscription("push subscription has no endpoint")
    if len(value) > MAX_ENDPOINT_LENGTH:
        raise InvalidSubscription("push endpoint is too long")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        raise InvalidSubscription("push endpoint is not a URL") from None
    host = parts.hostname
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        raise InvalidSubscription("push endpoint must be an absolute URL without credentials")
    loopback = _is_loopback(host)
    if loopback and not allow_loopback:
        raise InvalidSubscription("push endpoint must not be a loopback address")
    if parts.scheme == "http" and not loopback:
        raise InvalidSubscription("push endpoint must use https (http only on loopback)")
    if parts.scheme not in ("https", "http"):
        raise InvalidSubscription("push endpoint must use https")
    if not loopback and _is_internal_address(host):
        # Push services are public hosts; do not let a device aim us inwards.
        raise InvalidSubscription("push endpoint must not be a private address")
    return value


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_internal_address(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False  # a name, not an address literal


def _b64url_field(keys: Mapping[str, Any], name: str) -> bytes:
    value = keys.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidSubscription(f"push subscription has no keys.{name}")
    try:
        # Browsers send them unpadded; padding is tolerated.
        return b64url_decode(value[:-2] + value[-2:].rstrip("="))
    except ValueError:
        raise InvalidSubscription(f"keys.{name} must be base64url") from None
