"""A real Web Push service on loopback, standing in for the browsers' ones.

It speaks RFC 8030 to application servers: ``new_subscription()`` hands out
what a browser's ``PushSubscription.toJSON()`` would (an endpoint here, the
user agent's ECDH P-256 public key and a 16-byte auth secret, whose private
halves it keeps), and ``POST /push/<id>`` is checked the way a push service
checks it:

- a ``TTL`` header (RFC 8030 §5.2), and valid ``Urgency`` / ``Topic`` if present;
- ``Authorization: vapid t=<JWT>, k=<key>`` (RFC 8292 §3): an ES256 JWT signed
  by ``k`` whose ``aud`` is this service's origin, whose ``exp`` lies in the
  future but at most 24 hours ahead, and whose ``sub`` is a mailto: or https:
  URL; a subscription made for an application server key accepts no other
  (RFC 8292 §4.2, 403);
- a body in ``aes128gcm`` (RFC 8188/8291), which it decrypts with the
  subscription's private key and auth secret (http_ece).

Accepted messages are kept per subscription (201); ``wait_for_message`` blocks
on a condition until one arrives. Unknown subscriptions get 404, ones marked
with ``mark_gone`` 410.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

URGENCIES = ("very-low", "low", "normal", "high")
TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_BODY = 4096
MAX_EXP_AHEAD = 24 * 3600


def b64url_decode(value: str) -> bytes:
    value = value.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", value):
        raise ValueError("not base64url")
    value = value.rstrip("=")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class PushMessage:
    """One accepted push message, decrypted."""

    subscription_id: str
    payload: bytes
    ttl: int
    urgency: str | None
    topic: str | None
    # The application server's VAPID public key (k) and the JWT claims it signed.
    vapid_key: str
    claims: Mapping[str, Any]
    headers: Mapping[str, str]  # names in lower case

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass(frozen=True)
class Rejection:
    subscription_id: str | None
    status: int
    reason: str


@dataclass
class _Subscription:
    id: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str | None
    gone: bool = False
    messages: list[PushMessage] = field(default_factory=list)


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PushServiceStandIn:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._subscriptions: dict[str, _Subscription] = {}
        self._rejections: list[Rejection] = []
        self._changed = threading.Condition()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stand_in._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        # The origin application servers see, and the VAPID "aud" they must sign.
        self.url = f"http://localhost:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # --- what a browser and the test do ---------------------------------------------
    def new_subscription(self, *, application_server_key: str | None = None) -> dict[str, Any]:
        """A subscription as ``PushSubscription.toJSON()`` gives it. With
        ``application_server_key``, only messages signed by that VAPID key
        are accepted (as browsers subscribe with ``applicationServerKey``)."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        subscription = _Subscription(
            id=secrets.token_urlsafe(16),
            private_key=private_key,
            auth=secrets.token_bytes(16),
            application_server_key=application_server_key,
        )
        with self._changed:
            self._subscriptions[subscription.id] = subscription
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.url}/push/{subscription.id}",
            "expirationTime": None,
            "keys": {"p256dh": b64url(point), "auth": b64url(subscription.auth)},
        }

    def mark_gone(self, subscription: Mapping[str, Any]) -> None:
        """The user agent unsubscribed: further messages get 410 Gone."""
        with self._changed:
            self._subscriptions[self._id(subscription)].gone = True

    def forget(self, subscription: Mapping[str, Any]) -> None:
        """The push service no longer knows the subscription: 404."""
        with self._changed:
            del self._subscriptions[self._id(subscription)]

    def messages(self, subscription: Mapping[str, Any]) -> list[PushMessage]:
        with self._changed:
            return list(self._subscriptions[self._id(subscription)].messages)

    def wait_for_message(
        self, subscription: Mapping[str, Any], timeout: float = 5.0, *, count: int = 1
    ) -> PushMessage:
        """The ``count``-th message for the subscription, waiting up to ``timeout``."""
        sub_id = self._id(subscription)
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._subscriptions[sub_id].messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no push message #{count} within {timeout}s; "
                        f"rejections: {self.rejections(subscription)}"
                    )
                self._changed.wait(remaining)
            return self._subscriptions[sub_id].messages[count - 1]

    def rejections(self, subscription: Mapping[str, Any] | None = None) -> list[Rejection]:
        with self._changed:
            if subscription is None:
                return list(self._rejections)
            sub_id = self._id(subscription)
            return [r for r in self._rejections if r.subscription_id == sub_id]

    @staticmethod
    def _id(subscription: Mapping[str, Any]) -> str:
        return str(subscription["endpoint"]).rsplit("/", 1)[1]

    # --- what an application server meets --------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        match = re.fullmatch(r"/push/([A-Za-z0-9_-]+)", request.path)
        sub_id = match.group(1) if match else None
        try:
            message = self._accept(sub_id, request, body)
        except _Refused as refused:
            with self._changed:
                self._rejections.append(Rejection(sub_id, refused.status, refused.reason))
                self._changed.notify_all()
            payload = json.dumps({"reason": refused.reason}).encode()
            request.send_response(refused.status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
            return
        request.send_response(201)
        # RFC 8030 §5: the push message resource.
        request.send_header("Location", f"{self.url}/message/{secrets.token_urlsafe(12)}")
        request.send_header("Content-Length", "0")
        request.end_headers()
        with self._changed:
            self._subscriptions[message.subscription_id].messages.append(message)
            self._changed.notify_all()

    def _accept(
        self, sub_id: str | None, request: BaseHTTPRequestHandler, body: bytes
    ) -> PushMessage:
        with self._changed:
            subscription = self._subscriptions.get(sub_id or "")
        if subscription is None:
            raise _Refused(404, "no such subscription")
        if subscription.gone:
            raise _Refused(410, "subscription expired")

        headers = request.headers
        ttl_header = headers.get("TTL")
        # RFC 8030 §5.2: the TTL header is required.
        if ttl_header is None or not ttl_header.isdigit():
            raise _Refused(400, "TTL header missing or not a number")
        urgency = headers.get("Urgency")
        if urgency is not None and urgency not in URGENCIES:
            raise _Refused(400, "bad Urgency")
        topic = headers.get("Topic")
        if topic is not None and not TOPIC.match(topic):
            raise _Refused(400, "bad Topic")

        key, claims = self._verify_vapid(headers.get("Authorization"))
        if (
            subscription.application_server_key is not None
            and key != subscription.application_server_key
        ):
            # RFC 8292 §4.2: a restricted subscription takes only its key.
            raise _Refused(403, "VAPID key does not match the subscription")

        if len(body) > MAX_BODY:
            raise _Refused(413, "payload too large")
        if headers.get("Content-Encoding") != "aes128gcm":
            raise _Refused(400, "Content-Encoding must be aes128gcm")
        try:
            payload = http_ece.decrypt(
                body,
                private_key=subscription.private_key,
                auth_secret=subscription.auth,
                version="aes128gcm",
            )
        except Exception as exc:
            raise _Refused(400, f"cannot decrypt: {type(exc).__name__}: {exc}") from None
        return PushMessage(
            subscription_id=subscription.id,
            payload=bytes(payload),
            ttl=int(ttl_header),
            urgency=urgency,
            topic=topic,
            vapid_key=key,
            claims=claims,
            headers={name.lower(): value for name, value in headers.items()},
        )

    def _verify_vapid(self, authorization: str | None) -> tuple[str, dict[str, Any]]:
        """RFC 8292 §3: ``vapid t=<JWT>, k=<public key>``; returns (k, claims)."""
        if not authorization:
            raise _Refused(401, "no Authorization header")
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise _Refused(401, f"Authorization scheme {scheme!r} is not vapid")
        values: dict[str, str] = {}
        for part in params.split(","):
            name, sep, value = part.strip().partition("=")
            if sep:
                values[name.strip().lower()] = value.strip()
        token, key = values.get("t"), values.get("k")
        if not token or not key:
            raise _Refused(401, "vapid Authorization needs t= and k=")
        try:
            point = b64url_decode(key)
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            raise _Refused(401, "k is not a P-256 public key") from None
        if len(point) != 65:
            raise _Refused(401, "k is not an uncompressed point")

        parts = token.split(".")
        if len(parts) != 3:
            raise _Refused(401, "t is not a JWS in compact form")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            raise _Refused(401, "t is not decodable") from None
        if not isinstance(header, dict) or header.get("alg") != "ES256":
            raise _Refused(401, "JWT alg must be ES256")
        if len(signature) != 64:
            raise _Refused(401, "ES256 signature must be 64 bytes")
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            public_key.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise _Refused(401, "JWT signature does not verify with k") from None

        if not isinstance(claims, dict):
            raise _Refused(401, "JWT claims must be an object")
        if claims.get("aud") != self.url:
            raise _Refused(401, f"aud {claims.get('aud')!r} is not {self.url!r}")
        exp, now = claims.get("exp"), time.time()
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise _Refused(401, "exp must be a number")
        if exp <= now:
            raise _Refused(401, "JWT expired")
        if exp > now + MAX_EXP_AHEAD:
            # RFC 8292 §2: no more than 24 hours from the time of the request.
            raise _Refused(401, "exp more than 24 hours ahead")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            raise _Refused(401, "sub must be a mailto: or https: URL")
        return b64url(point), claims
