"""PushService against the push service stand-in, with a fixed VAPID key (no database)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import pywebpush
from cryptography.hazmat.primitives.asymmetric import ec

import idp.push.service as push_module
from idp.push import PushService, VapidKeyPair, vapid_subject
from idp.push.keys import public_point
from tests.support.push_service import PushServiceStandIn

APPROVAL = {"type": "approval", "id": "apv_3JtV9qk"}


class FixedKey:
    """A VAPID key source holding one key in memory."""

    def __init__(self) -> None:
        private = ec.generate_private_key(ec.SECP256R1())
        self.pair = VapidKeyPair(public_key=public_point(private), private_key=private)

    def current(self) -> VapidKeyPair:
        return self.pair

    def ensure(self) -> None:
        """Always there."""


@pytest.fixture
def push() -> PushService:
    return PushService(keys=FixedKey(), subject="mailto:admin@localhost", timeout=5)


def test_the_stand_in_receives_exactly_the_opaque_payload(
    push: PushService, push_service: PushServiceStandIn
) -> None:
    subscription = push_service.new_subscription(application_server_key=push.public_key())
    result = push.send(subscription, APPROVAL, ttl=120)
    assert result.delivered and not result.gone and result.status == 201 and result.error is None

    message = push_service.wait_for_message(subscription)
    assert message.payload == json.dumps(APPROVAL, separators=(",", ":")).encode()
    assert message.json() == APPROVAL
    # RFC 8030 §5.2/§5.3: the TTL and urgency we chose, not library defaults.
    assert message.ttl == 120 and message.urgency == "high" and message.topic is None
    assert message.headers["content-encoding"] == "aes128gcm"
    assert message.vapid_key == push.public_key()
    assert message.claims["sub"] == "mailto:admin@localhost"
    assert message.claims["aud"] == push_service.url
    assert time.time() < message.claims["exp"] <= time.time() + 12 * 3600


def test_urgency_and_topic_are_sent(push: PushService, push_service: PushServiceStandIn) -> None:
    subscription = push_service.new_subscription()
    assert push.send(subscription, APPROVAL, ttl=0, urgency="normal", topic="approval").delivered
    message = push_service.wait_for_message(subscription)
    assert (message.ttl, message.urgency, message.topic) == (0, "normal", "approval")


def test_each_send_signs_fresh_claims(
    push: PushService, push_service: PushServiceStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STYLE "Do not": pywebpush writes into the claims dict it is given; a
    reused dict would carry the first endpoint's "aud" and an old "exp"."""
    other = PushServiceStandIn()
    try:
        given: list[dict[str, Any]] = []
        real_webpush = pywebpush.webpush

        def recording_webpush(*args: Any, **kwargs: Any) -> Any:
            given.append(kwargs["vapid_claims"])
            return real_webpush(*args, **kwargs)

        # The sender imports webpush from pywebpush where it sends.
        monkeypatch.setattr(pywebpush, "webpush", recording_webpush)
        first, second = push_service.new_subscription(), other.new_subscription()

        assert push.send(first, APPROVAL, ttl=60).delivered
        # An hour later, to another push service.
        later = time.time() + 3600
        monkeypatch.setattr(push_module.time, "time", lambda: later)
        assert push.send(second, APPROVAL, ttl=60).delivered
        monkeypatch.undo()

        one, two = push_service.wait_for_message(first), other.wait_for_message(second)
        assert given[0] is not given[1]
        assert one.claims["aud"] == push_service.url and two.claims["aud"] == other.url
        assert two.claims["exp"] - one.claims["exp"] >= 3600 - 5
        # What we handed pywebpush still holds what we put there.
        assert given[0]["aud"] == push_service.url and given[1]["aud"] == other.url
    finally:
        other.close()


def test_a_subscription_bound_to_another_key_is_refused(
    push: PushService, push_service: PushServiceStandIn
) -> None:
    # RFC 8292 §4.2: the push service answers 403; the subscription stays.
    subscription = push_service.new_subscription(application_server_key=FixedKey().pair.public_key)
    result = push.send(subscription, APPROVAL, ttl=60)
    assert (result.delivered, result.gone, result.status) == (False, False, 403)
    assert result.error == "push_service_403"
    assert push_service.messages(subscription) == []


@pytest.mark.parametrize(("how", "status"), [("mark_gone", 410), ("forget", 404)])
def test_gone_subscriptions_are_reported(
    push: PushService, push_service: PushServiceStandIn, how: str, status: int
) -> None:
    subscription = push_service.new_subscription()
    getattr(push_service, how)(subscription)
    result = push.send(subscription, APPROVAL, ttl=60)
    assert (result.delivered, result.gone, result.status) == (False, True, status)


def test_an_invalid_stored_subscription_is_reported_not_raised(push: PushService) -> None:
    result = push.send({"endpoint": "http://push.example.net/x", "keys": {}}, APPROVAL, ttl=60)
    assert (result.delivered, result.gone, result.error) == (False, True, "invalid_subscription")


def test_a_production_service_refuses_loopback_endpoints(
    push_service: PushServiceStandIn,
) -> None:
    push = PushService(
        keys=FixedKey(), subject="mailto:a@b.example", timeout=5, allow_loopback=False
    )
    result = push.send(push_service.new_subscription(), APPROVAL, ttl=60)
    assert (result.delivered, result.error) == (False, "invalid_subscription")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": -1}, "ttl"),
        ({"ttl": 1.5}, "ttl"),
        ({"ttl": 60, "urgency": "urgent"}, "urgency"),
        ({"ttl": 60, "topic": "a" * 33}, "topic"),
        ({"ttl": 60, "topic": "no spaces"}, "topic"),
    ],
)
def test_wrong_arguments_are_programming_errors(
    push: PushService, push_service: PushServiceStandIn, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        push.send(push_service.new_subscription(), APPROVAL, **options)


def test_a_payload_must_fit_one_record(push: PushService, push_service: PushServiceStandIn) -> None:
    # RFC 8291 §4: 4096 bytes in all; 3993 bytes of plaintext fit.
    subscription = push_service.new_subscription()
    fits = {"p": "x" * (3993 - len('{"p":""}'))}
    assert push.send(subscription, fits, ttl=60).delivered
    assert len(push_service.wait_for_message(subscription).payload) == 3993
    with pytest.raises(ValueError, match="exceeds"):
        push.send(subscription, {"p": "x" * 3993}, ttl=60)


def test_nothing_secret_is_logged(
    push: PushService, push_service: PushServiceStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    subscription = push_service.new_subscription()
    caplog.set_level("DEBUG", logger="idp.push")
    push.send(subscription, APPROVAL, ttl=60)
    push_service.mark_gone(subscription)
    push.send(subscription, APPROVAL, ttl=60)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("idp.push"))
    assert "push to localhost: 201" in logged and "push to localhost: 410" in logged
    for secret in (APPROVAL["id"], subscription["keys"]["auth"], subscription["keys"]["p256dh"]):
        assert secret not in logged
    assert subscription["endpoint"] not in logged


@pytest.mark.parametrize(
    ("contact", "host", "subject"),
    [
        ("", "localhost", "mailto:admin@localhost"),
        ("", "login.example.org", "mailto:admin@login.example.org"),
        ("it@example.org", "x", "mailto:it@example.org"),
        ("mailto:it@example.org", "x", "mailto:it@example.org"),
        ("https://example.org/contact", "x", "https://example.org/contact"),
    ],
)
def test_the_vapid_subject(contact: str, host: str, subject: str) -> None:
    # RFC 8292 §2.1: a mailto: or https: URL for the operator.
    assert vapid_subject(contact, host) == subject
