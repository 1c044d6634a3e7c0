"""A software WebAuthn authenticator and client for the CLI device.

It builds the same messages a platform authenticator on a phone does, so the
server verifies them exactly like any other device: clientDataJSON with the
IdP issuer as origin (a native app with associated domains), authenticatorData
for the issuer host as RP ID, ES256 (P-256) keys, "none" attestation.
Built from ``cryptography`` and ``cbor2`` only; it never imports py_webauthn,
so the server's verification is checked against an independent implementation.

References: WebAuthn Level 2 (https://www.w3.org/TR/webauthn-2/) §5.8.1
(clientDataJSON), §6.1 (authenticatorData), §6.5.1 (attested credential data),
§8.7 ("none" attestation); RFC 9053 §7.1.1 / RFC 8230 (COSE EC2 keys).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from idp.encoding import b64url_decode, b64url_encode

# The AAGUID of "Freigabe CLI device" (a random UUID chosen once; servers may
# show it as the authenticator model). 24f89107-d861-4953-9a36-5c23ff032a3c
AAGUID = bytes.fromhex("24f89107d86149539a365c23ff032a3c")

CREDENTIAL_ID_BYTES = 32
MAX_SIGN_COUNT = 2**32 - 1

# COSE (RFC 9052/9053): key type EC2, algorithm ES256, curve P-256.
COSE_KTY, COSE_ALG, COSE_CRV, COSE_X, COSE_Y = 1, 3, -1, -2, -3
COSE_KTY_EC2, COSE_ALG_ES256, COSE_CRV_P256 = 2, -7, 1

# authenticatorData flags (§6.1).
FLAG_UP = 0x01  # user present
FLAG_UV = 0x04  # user verified
FLAG_BE = 0x08  # backup eligible: never for the CLI device (tests may ask for it)
FLAG_BS = 0x10  # backed up
FLAG_AT = 0x40  # attested credential data included


class AuthenticatorError(Exception):
    """The authenticator refuses the request (as a browser or platform would)."""


@dataclass
class CredentialKey:
    """One credential: its ID, its private key, its signature counter and the
    user handle it was registered for."""

    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    sign_count: int = 0
    user_handle: bytes | None = None
    # The BE / BS flags it reports (a synced passkey sets both). Not kept in
    # the key store: the CLI device's key never leaves it.
    backup_eligible: bool = False
    backed_up: bool = False

    @classmethod
    def generate(cls, *, user_handle: bytes | None = None) -> CredentialKey:
        return cls(
            credential_id=secrets.token_bytes(CREDENTIAL_ID_BYTES),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            user_handle=user_handle,
        )

    def public_key_cose(self) -> bytes:
        """The public key as a COSE_Key (EC2, ES256, P-256), CTAP2 canonical CBOR."""
        numbers = self.private_key.public_key().public_numbers()
        return bytes(
            cbor2.dumps(
                {
                    COSE_KTY: COSE_KTY_EC2,
                    COSE_ALG: COSE_ALG_ES256,
                    COSE_CRV: COSE_CRV_P256,
                    COSE_X: numbers.x.to_bytes(32, "big"),
                    COSE_Y: numbers.y.to_bytes(32, "big"),
                },
                canonical=True,
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, private key included (PKCS#8 PEM, unencrypted): keep it
        only inside an encrypted key store."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return {
            "credential_id": b64url_encode(self.credential_id),
            "private_key": pem.decode("ascii"),
            "sign_count": self.sign_count,
            "user_handle": None if self.user_handle is None else b64url_encode(self.user_handle),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CredentialKey:
        key = serialization.load_pem_private_key(data["private_key"].encode("ascii"), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("the stored credential key is not a P-256 key")
        user_handle = data.get("user_handle")
        return cls(
            credential_id=b64url_decode(data["credential_id"]),
            private_key=key,
            sign_count=int(data["sign_count"]),
            user_handle=None if user_handle is None else b64url_decode(user_handle),
        )


def _client_data_json(*, ceremony: str, challenge: bytes, origin: str) -> bytes:
    """clientDataJSON as browsers serialise it (§5.8.1.1): type, challenge,
    origin, crossOrigin in this order, no whitespace."""
    return json.dumps(
        {
            "type": ceremony,
            "challenge": b64url_encode(challenge),
            "origin": origin,
            "crossOrigin": False,
        },
        separators=(",", ":"),
    ).encode("utf-8")


def _check_rp_id(rp_id: str, origin: str) -> None:
    """The client's rule (§5.1.3 / §5.1.4.1): the RP ID is the origin's host or a
    parent domain of it. Without it, any server could ask for signatures meant
    for another."""
    host = urlsplit(origin).hostname or ""
    if not rp_id or not (host == rp_id or host.endswith("." + rp_id)):
        raise AuthenticatorError(f"RP ID {rp_id!r} is not valid for origin {origin!r}")


def _authenticator_data(
    *, rp_id: str, flags: int, sign_count: int, attested_credential_data: bytes = b""
) -> bytes:
    """rpIdHash (32) | flags (1) | signCount (4, big-endian) | attested credential data."""
    return (
        hashlib.sha256(rp_id.encode("utf-8")).digest()
        + struct.pack(">BI", flags, sign_count)
        + attested_credential_data
    )


def _backup_flags(key: CredentialKey) -> int:
    return (FLAG_BE if key.backup_eligible else 0) | (FLAG_BS if key.backed_up else 0)


def _options(options_json: str | Mapping[str, Any]) -> Mapping[str, Any]:
    options: Any = json.loads(options_json) if isinstance(options_json, str) else options_json
    # The JSON form of server options may be wrapped as {"publicKey": {...}}.
    options = options.get("publicKey", options)
    if not isinstance(options, Mapping):
        raise AuthenticatorError("the options are not a JSON object")
    return options


def create_credential(
    *,
    options_json: str | Mapping[str, Any],
    origin: str,
    user_verified: bool = True,
    backup_eligible: bool = False,
) -> tuple[CredentialKey, dict[str, Any]]:
    """``navigator.credentials.create()``: a new P-256 credential for the
    options' RP and user, and the registration response in its JSON form
    (RegistrationResponseJSON).

    ``user_verified`` is whether the PIN unlock (the CLI's stand-in for
    biometrics) happened: it sets the UV flag. ``backup_eligible`` makes it
    behave like a synced passkey (BE and BS set).
    """
    options = _options(options_json)
    rp_id = options["rp"].get("id") or urlsplit(origin).hostname or ""
    _check_rp_id(rp_id, origin)
    algorithms = [param.get("alg") for param in options.get("pubKeyCredParams", [])]
    if algorithms and COSE_ALG_ES256 not in algorithms:
        raise AuthenticatorError("the server does not accept ES256 keys")
    challenge = b64url_decode(options["challenge"])
    user_handle = b64url_decode(options["user"]["id"])

    key = CredentialKey.generate(user_handle=user_handle)
    key.backup_eligible = key.backed_up = backup_eligible
    attested_credential_data = (
        AAGUID
        + struct.pack(">H", len(key.credential_id))
        + key.credential_id
        + key.public_key_cose()
    )
    flags = FLAG_UP | FLAG_AT | (FLAG_UV if user_verified else 0) | _backup_flags(key)
    auth_data = _authenticator_data(
        rp_id=rp_id,
        flags=flags,
        sign_count=key.sign_count,
        attested_credential_data=attested_credential_data,
    )
    # §8.7: "none" attestation has an empty statement.
    attestation_object = bytes(
        cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data}, canonical=True)
    )
    client_data = _client_data_json(ceremony="webauthn.create", challenge=challenge, origin=origin)
    response = {
        "id": b64url_encode(key.credential_id),
        "rawId": b64url_encode(key.credential_id),
        "type": "public-key",
        "response": {
            "clientDataJSON": b64url_encode(client_data),
            "attestationObject": b64url_encode(attestation_object),
            "transports": ["internal"],
        },
        "clientExtensionResults": {},
        "authenticatorAttachment": "platform",
    }
    return key, response


def get_assertion(
    *,
    key: CredentialKey,
    rp_id: str,
    origin: str,
    challenge: bytes,
    user_verified: bool = True,
    sign_count: int | None = None,
) -> dict[str, Any]:
    """``navigator.credentials.get()``: an assertion by ``key`` over ``challenge``,
    in its JSON form (AuthenticationResponseJSON).

    The counter goes up by one and is kept in ``key`` (save the key store
    afterwards). ``sign_count`` sets the counter instead (a restored or
    misbehaving authenticator; tests use it for replays).
    """
    _check_rp_id(rp_id, origin)
    count = key.sign_count + 1 if sign_count is None else sign_count
    if not 0 <= count <= MAX_SIGN_COUNT:
        raise AuthenticatorError("the signature counter is out of range")
    key.sign_count = count

    flags = FLAG_UP | (FLAG_UV if user_verified else 0) | _backup_flags(key)
    auth_data = _authenticator_data(rp_id=rp_id, flags=flags, sign_count=count)
    client_data = _client_data_json(ceremony="webauthn.get", challenge=challenge, origin=origin)
    # §6.3.3: the signature over authenticatorData || SHA-256(clientDataJSON);
    # for ES256 an ASN.1 DER ECDSA signature ("Signature Formats ... Assertion
    # Signatures", §6.5.5).
    signature = key.private_key.sign(
        auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
    )
    assertion: dict[str, Any] = {
        "clientDataJSON": b64url_encode(client_data),
        "authenticatorData": b64url_encode(auth_data),
        "signature": b64url_encode(signature),
    }
    if key.user_handle is not None:
        assertion["userHandle"] = b64url_encode(key.user_handle)
    return {
        "id": b64url_encode(key.credential_id),
        "rawId": b64url_encode(key.credential_id),
        "type": "public-key",
        "response": assertion,
        "clientExtensionResults": {},
        "authenticatorAttachment": "platform",
    }


def get_assertion_for_options(
    *,
    key: CredentialKey,
    options_json: str | Mapping[str, Any],
    origin: str,
    user_verified: bool = True,
) -> dict[str, Any]:
    """``get_assertion`` for server-made authentication options
    (PublicKeyCredentialRequestOptionsJSON): their challenge and RP ID, and
    refused when ``allowCredentials`` names other credentials only."""
    options = _options(options_json)
    rp_id = options.get("rpId") or urlsplit(origin).hostname or ""
    allowed = [b64url_decode(c["id"]) for c in options.get("allowCredentials") or []]
    if allowed and key.credential_id not in allowed:
        raise AuthenticatorError("this device's credential is not among the allowed ones")
    return get_assertion(
        key=key,
        rp_id=rp_id,
        origin=origin,
        challenge=b64url_decode(options["challenge"]),
        user_verified=user_verified,
    )
