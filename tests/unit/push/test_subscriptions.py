"""parse_subscription: what a device may register as its Web Push subscription."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from idp.errors import IdpError
from idp.push import InvalidSubscription, parse_subscription


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def point(compressed: bool = False) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    fmt = (
        serialization.PublicFormat.CompressedPoint
        if compressed
        else serialization.PublicFormat.UncompressedPoint
    )
    return key.public_bytes(serialization.Encoding.X962, fmt)


def subscription(endpoint: str = "https://push.example.net/wpush/v2/abc", **keys: Any) -> dict:
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {"p256dh": b64url(point()), "auth": b64url(os.urandom(16)), **keys},
    }


def test_a_browser_subscription_is_accepted_and_normalised() -> None:
    data = subscription()
    data["keys"]["auth"] += "=="  # padded base64url is accepted, stored unpadded
    parsed = parse_subscription(data)
    assert parsed.endpoint == data["endpoint"]
    assert parsed.origin == "https://push.example.net"
    assert parsed.host == "push.example.net"
    assert base64.urlsafe_b64decode(parsed.p256dh + "=")[0] == 4
    assert not parsed.auth.endswith("=")
    assert parsed.as_dict() == {
        "endpoint": data["endpoint"],
        "keys": {"p256dh": parsed.p256dh, "auth": parsed.auth},
    }
    # The auth secret stays out of reprs (and so out of logs).
    assert parsed.auth not in repr(parsed)


def test_json_text_is_accepted() -> None:
    data = subscription()
    assert parse_subscription(json.dumps(data)).endpoint == data["endpoint"]


@pytest.mark.parametrize(
    "endpoint",
    ["http://localhost:8080/push/1", "http://127.0.0.1:9/push/1", "http://[::1]:9/push/1"],
)
def test_http_is_accepted_on_loopback_only_where_allowed(endpoint: str) -> None:
    assert parse_subscription(subscription(endpoint)).endpoint == endpoint
    with pytest.raises(InvalidSubscription, match="loopback"):
        parse_subscription(subscription(endpoint), allow_loopback=False)


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        # RFC 8030 §8: push messages travel over TLS.
        ("http://push.example.net/abc", "https"),
        ("http://192.0.2.10/abc", "https"),
        ("ftp://push.example.net/abc", "https"),
        ("https://user:pw@push.example.net/abc", "credentials"),
        ("https:///abc", "absolute URL"),
        ("https://push.example.net:99999/abc", "not a URL"),
        # Not a push service: an address inside the deployment's network.
        ("https://10.1.2.3/abc", "private address"),
        ("https://[fd00::1]/abc", "private address"),
        ("https://169.254.169.254/latest", "private address"),
        ("https://push.example.net/" + "a" * 2100, "too long"),
        ("", "no endpoint"),
    ],
)
def test_bad_endpoints_are_refused(endpoint: str, message: str) -> None:
    with pytest.raises(InvalidSubscription, match=message):
        parse_subscription(subscription(endpoint))


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        # RFC 8291 §3.1: p256dh is an uncompressed P-256 point, 65 bytes.
        ({"p256dh": b64url(point()[:64])}, "65 bytes"),
        ({"p256dh": b64url(point(compressed=True))}, "65 bytes"),
        ({"p256dh": b64url(b"\x04" + b"\x01" * 64)}, "not a point"),
        ({"p256dh": "not base64!"}, "base64url"),
        # RFC 8291 §3.2: the auth secret is 16 bytes.
        ({"auth": b64url(os.urandom(15))}, "16 bytes"),
        ({"auth": b64url(os.urandom(17))}, "16 bytes"),
        ({"auth": ""}, "no keys.auth"),
        ({"auth": None}, "no keys.auth"),
    ],
)
def test_bad_keys_are_refused(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSubscription, match=message):
        parse_subscription(subscription(**keys))


def test_missing_parts_are_refused() -> None:
    data = subscription()
    del data["keys"]["auth"]
    with pytest.raises(InvalidSubscription, match=r"no keys\.auth"):
        parse_subscription(data)
    with pytest.raises(InvalidSubscription, match="no keys"):
        parse_subscription({"endpoint": "https://push.example.net/abc"})
    with pytest.raises(InvalidSubscription, match="JSON object"):
        parse_subscription(json.dumps(["https://push.example.net/abc"]))
    with pytest.raises(InvalidSubscription, match="not JSON"):
        parse_subscription("{")


def test_the_error_is_one_of_ours_with_its_code() -> None:
    with pytest.raises(IdpError) as raised:
        parse_subscription({})
    assert raised.value.error == "invalid_subscription"
    assert raised.value.status == 400
