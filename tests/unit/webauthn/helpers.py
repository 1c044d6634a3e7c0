"""A registered CLI device and ways to bend its messages, for the WebAuthn tests."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2

from clients.device.authenticator import CredentialKey, create_credential, get_assertion
from idp.webauthn import (
    RegisteredCredential,
    VerifiedAssertion,
    approval_challenge,
    b64url_decode,
    b64url_encode,
    registration_options,
    verify_assertion,
    verify_registration,
)

ISSUER = "http://localhost:5000"
RP_ID = "localhost"
USER_HANDLE = bytes(range(16))
CONTEXT = {
    "client": "FinanceCloud",
    "ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0",
    "time": 1795000000,
    "binding_message": "Überweisung 42",
}


@dataclass
class Device:
    key: CredentialKey
    credential: RegisteredCredential


def register_device(*, rp_id: str = RP_ID, origin: str = ISSUER) -> Device:
    options = registration_options(
        rp_id=rp_id,
        rp_name="Freigabe",
        user_handle=USER_HANDLE,
        user_name="alice",
        user_display_name="Alice",
    )
    key, response = create_credential(options_json=options.json, origin=origin)
    credential = verify_registration(
        response=response, expected_challenge=options.challenge, expected_origin=origin, rp_id=rp_id
    )
    return Device(key=key, credential=credential)


def approval(decision: str = "approve", code: str = "42", approval_id: str = "apr_1") -> bytes:
    return approval_challenge(
        approval_id=approval_id,
        decision=decision,  # type: ignore[arg-type]
        code=code,
        context=CONTEXT,
    )


def answer(device: Device, challenge: bytes, **kwargs: Any) -> dict[str, Any]:
    """The device's assertion over ``challenge`` (as the CLI sends it)."""
    kwargs.setdefault("rp_id", RP_ID)
    kwargs.setdefault("origin", ISSUER)
    return get_assertion(key=device.key, challenge=challenge, **kwargs)


def check(device: Device, response: Any, challenge: bytes, **kwargs: Any) -> VerifiedAssertion:
    """The server's verification, against the device's stored credential."""
    kwargs.setdefault("expected_origin", ISSUER)
    kwargs.setdefault("rp_id", RP_ID)
    kwargs.setdefault("current_sign_count", device.credential.sign_count)
    kwargs.setdefault("credential_public_key", device.credential.public_key)
    return verify_assertion(response=response, expected_challenge=challenge, **kwargs)


def rewrite(
    response: dict[str, Any],
    field: str,
    change: Callable[[bytes], bytes],
) -> dict[str, Any]:
    """A copy of ``response`` with one base64url member of ``response.response`` changed."""
    changed = copy.deepcopy(response)
    changed["response"][field] = b64url_encode(change(b64url_decode(changed["response"][field])))
    return changed


def rewrite_client_data(response: dict[str, Any], **members: Any) -> dict[str, Any]:
    def change(raw: bytes) -> bytes:
        return json.dumps({**json.loads(raw), **members}, separators=(",", ":")).encode()

    return rewrite(response, "clientDataJSON", change)


def rewrite_registration_auth_data(
    response: dict[str, Any], change: Callable[[bytes], bytes]
) -> dict[str, Any]:
    def change_object(raw: bytes) -> bytes:
        attestation = cbor2.loads(raw)
        attestation["authData"] = change(attestation["authData"])
        return bytes(cbor2.dumps(attestation, canonical=True))

    return rewrite(response, "attestationObject", change_object)


def with_flags(auth_data: bytes, *, set_: int = 0, clear: int = 0) -> bytes:
    flags = (auth_data[32] | set_) & ~clear
    return auth_data[:32] + bytes([flags]) + auth_data[33:]
