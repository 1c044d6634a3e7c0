"""Signed-decision challenges and their canonical JSON (DESIGN §3 step 6).

The pinned digests were computed once, and reproduced with the JavaScript
function in ``canonical_json``'s docstring (Node's JSON.stringify), which the
browser device app will use.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from idp.webauthn import (
    action_challenge,
    approval_challenge,
    b64url_decode,
    b64url_encode,
    canonical_json,
    context_digest,
)

from .helpers import CONTEXT

# Sorting, nesting, escapes (quote, backslash, controls), non-ASCII, U+2028,
# an astral character, the largest safe integer.
TRICKY = {
    "z": [1, True, None, 'a\u00e9\u20ac\n"\\/\t'],
    "a": {"b": -5, "A": "x"},
    "m": "Zürich \U0001f600",
    "ctl": "\x01\x1f\u2028\x7f",
    "n": 2**53 - 1,
}


def test_canonical_json_known_answer() -> None:
    encoded = canonical_json(TRICKY)
    assert encoded == (
        '{"a":{"A":"x","b":-5},"ctl":"\\u0001\\u001f\u2028\x7f","m":"Zürich \U0001f600",'
        '"n":9007199254740991,"z":[1,true,null,"a\u00e9\u20ac\\n\\"\\\\/\\t"]}'
    ).encode("utf-8")
    assert (
        hashlib.sha256(encoded).hexdigest()
        == "2fc36c1484ae136a61da7e3902d2c569f514f5c3a5e9b21acef8bbfd275461ab"
    )


def test_approval_challenge_known_answer() -> None:
    assert context_digest(CONTEXT) == (
        "6282d74035a80d2a7ffcda88cafc5ce8c1ec3fda79a53f0c0b2c56ab05ea8dd9"
    )
    challenge = approval_challenge(
        approval_id="apr_123", decision="approve", code="42", context=CONTEXT
    )
    assert challenge.hex() == "14c1aeb9175cdcd0892aec33016c3cb67e07054d698c34fc0b0d102a615e10fb"
    # It is the statement DESIGN §3 step 6 describes.
    statement = {
        "v": 1,
        "approval": "apr_123",
        "decision": "approve",
        "code": "42",
        "context": hashlib.sha256(canonical_json(CONTEXT)).hexdigest(),
    }
    assert challenge == hashlib.sha256(canonical_json(statement)).digest()


def test_action_challenge_known_answer() -> None:
    challenge = action_challenge(purpose="delete_device", payload={"device": "dev_1"})
    assert challenge.hex() == "cd2cb49670bb7681cf7ccb58e7dcf9907eeea14a810506f62984ff1a6b6c3d03"


def test_approval_challenge_is_deterministic_and_ignores_key_order() -> None:
    reordered = dict(reversed(list(CONTEXT.items())))
    first = approval_challenge(approval_id="a1", decision="approve", code="42", context=CONTEXT)
    again = approval_challenge(approval_id="a1", decision="approve", code="42", context=reordered)
    assert first == again
    assert len(first) == 32


@pytest.mark.parametrize(
    "change",
    [
        {"approval_id": "a2"},
        {"decision": "deny"},
        {"code": "24"},
        {"code": "042"},  # the code as typed, not as a number
        {"context": {**CONTEXT, "ip": "198.51.100.1"}},
        {"context": {**CONTEXT, "extra": None}},
    ],
)
def test_approval_challenge_changes_with_each_field(change: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "approval_id": "a1",
        "decision": "approve",
        "code": "42",
        "context": CONTEXT,
    }
    assert approval_challenge(**base) != approval_challenge(**{**base, **change})


def test_action_challenge_changes_with_purpose_and_payload() -> None:
    base = action_challenge(purpose="delete_device", payload={"device": "d1"})
    assert base != action_challenge(purpose="activate_restoration", payload={"device": "d1"})
    assert base != action_challenge(purpose="delete_device", payload={"device": "d2"})


def test_approval_challenge_refuses_unknown_decisions() -> None:
    with pytest.raises(ValueError):
        approval_challenge(
            approval_id="a1",
            decision="maybe",  # type: ignore[arg-type]
            code="42",
            context=CONTEXT,
        )
    with pytest.raises(ValueError):
        approval_challenge(approval_id="", decision="approve", code="42", context=CONTEXT)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"price": 1.5}, TypeError),  # floats print differently across languages
        ({"é": 1}, TypeError),  # keys are ASCII, so JavaScript sorts them the same
        ({1: "x"}, TypeError),
        ({"n": 2**53}, ValueError),  # beyond JavaScript's exact integers
        ({"s": "\ud800"}, ValueError),  # a lone surrogate has no UTF-8
        ({"b": b"bytes"}, TypeError),
    ],
)
def test_canonical_json_refuses_what_javascript_would_encode_differently(
    value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        canonical_json(value)


def test_b64url_round_trip_and_strictness() -> None:
    for data in (b"", b"\x00", b"\xfb\xff", bytes(range(256))):
        encoded = b64url_encode(data)
        assert "=" not in encoded
        assert b64url_decode(encoded) == data
    for bad in ("AA==", "A", "AA AA", "AA+/", "AA\n"):
        with pytest.raises(ValueError):
            b64url_decode(bad)
