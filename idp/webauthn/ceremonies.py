"""Registration and assertion ceremonies: the only module of ours that imports py_webauthn.

Every rule is checked here in spec order, each with its own reason code, before
py_webauthn's own verification runs as the final word (attestation statement,
signature). py_webauthn's exceptions and messages never leave this module:
they are logged at debug level and become a ``WebAuthnError``.

Section and step numbers are those of WebAuthn Level 2
(https://www.w3.org/TR/webauthn-2/) unless marked L3.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NoReturn

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    aaguid_to_string,
    bytes_to_base64url,
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorData,
    AuthenticatorSelectionCriteria,
    ClientDataType,
    CollectedClientData,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    TokenBindingStatus,
    UserVerificationRequirement,
)

from ..encoding import b64url_decode
from .errors import Reason, WebAuthnError

log = logging.getLogger(__name__)

# Offered in this order of preference; the same list bounds what we accept.
ALGORITHMS = (
    COSEAlgorithmIdentifier.ECDSA_SHA_256,  # ES256
    COSEAlgorithmIdentifier.EDDSA,  # EdDSA (Ed25519)
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,  # RS256
)

CHALLENGE_BYTES = 32
# §13.4.3: challenges SHOULD be at least 16 bytes.
MIN_CHALLENGE_BYTES = 16
# §5.4.3: user.id is at most 64 bytes.
MAX_USER_HANDLE_BYTES = 64
# L3 §7.1: a credential ID longer than 1023 bytes is refused.
MAX_CREDENTIAL_ID_BYTES = 1023
DEFAULT_TIMEOUT_MS = 120_000

Response = str | Mapping[str, Any]
Origins = str | Sequence[str]


@dataclass(frozen=True)
class PublicKeyOptions:
    """Options for ``navigator.credentials.create()`` / ``.get()``.

    ``challenge`` is kept by the server (once, until used); ``json`` goes to the
    client as is (binary members in base64url).
    """

    challenge: bytes
    json: str


@dataclass(frozen=True)
class RegisteredCredential:
    """A verified new credential: what a device row stores."""

    credential_id: bytes
    public_key: bytes  # COSE_Key
    sign_count: int
    aaguid: str
    fmt: str
    backup_eligible: bool
    backed_up: bool
    user_verified: bool
    transports: tuple[str, ...]


@dataclass(frozen=True)
class VerifiedAssertion:
    """A verified assertion.

    ``new_sign_count`` is the authenticator's counter as reported. When
    ``sign_count_regressed`` is true (only possible with
    ``refuse_sign_count_regression=False``), keep the stored counter: never
    lower it.
    """

    credential_id: bytes
    new_sign_count: int
    user_verified: bool
    backup_eligible: bool
    backed_up: bool
    sign_count_regressed: bool
    user_handle: bytes | None


def _refuse(reason: Reason, explanation: str, exc: BaseException | None = None) -> NoReturn:
    log.info("WebAuthn response refused: %s (%s)", reason, explanation)
    if exc is not None:
        # Library text stays in the log, at debug level.
        log.debug("WebAuthn library said: %r", exc)
    raise WebAuthnError(reason=reason, explanation=explanation) from exc


def _challenge(challenge: bytes | None) -> bytes:
    if challenge is None:
        return secrets.token_bytes(CHALLENGE_BYTES)
    if len(challenge) < MIN_CHALLENGE_BYTES:
        raise ValueError(f"a challenge needs at least {MIN_CHALLENGE_BYTES} bytes")
    return challenge


def _descriptors(credential_ids: Sequence[bytes]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=bytes(cid)) for cid in credential_ids]


def registration_options(
    *,
    rp_id: str,
    rp_name: str,
    user_handle: bytes,
    user_name: str,
    user_display_name: str,
    exclude_credential_ids: Sequence[bytes] = (),
    attestation: str = "none",
    resident_key: str = "preferred",
    challenge: bytes | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> PublicKeyOptions:
    """Options to create a credential, with user verification required.

    ``attestation`` is a WebAuthn AttestationConveyancePreference ("none",
    "indirect", "direct", "enterprise"), ``resident_key`` a
    ResidentKeyRequirement ("discouraged", "preferred", "required"); anything
    else is a ValueError. A fresh 32-byte challenge unless one is given.
    """
    if not user_handle or len(user_handle) > MAX_USER_HANDLE_BYTES:
        raise ValueError(f"user_handle must be 1 to {MAX_USER_HANDLE_BYTES} bytes")
    challenge = _challenge(challenge)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=user_display_name,
        challenge=challenge,
        timeout=timeout_ms,
        attestation=AttestationConveyancePreference(attestation),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement(resident_key),
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(exclude_credential_ids),
        supported_pub_key_algs=list(ALGORITHMS),
    )
    return PublicKeyOptions(challenge=challenge, json=options_to_json(options))


def authentication_options(
    *,
    rp_id: str,
    allow_credential_ids: Sequence[bytes] = (),
    challenge: bytes | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> PublicKeyOptions:
    """Options to get an assertion, with user verification required.

    An empty ``allow_credential_ids`` lets the user pick a discoverable
    credential (passkey); the assertion's ``user_handle`` then names the user.
    """
    challenge = _challenge(challenge)
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=challenge,
        timeout=timeout_ms,
        allow_credentials=_descriptors(allow_credential_ids),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return PublicKeyOptions(challenge=challenge, json=options_to_json(options))


def credential_id_of(response: Response) -> bytes:
    """The ``rawId`` of a registration or assertion response, unverified.

    For looking up which device answers before verifying its assertion.
    """
    try:
        data = json.loads(response) if isinstance(response, str) else response
        raw_id = data["rawId"]
        return b64url_decode(raw_id)
    except (ValueError, TypeError, KeyError) as exc:
        _refuse("malformed", "no readable rawId", exc)


def challenge_of(response: Response) -> bytes:
    """The challenge a response's clientDataJSON names, unverified.

    For finding which of the challenges we issued a response answers; the
    verification then checks it against that challenge like any other.
    """
    try:
        data = json.loads(response) if isinstance(response, str) else response
        client_data = json.loads(b64url_decode(data["response"]["clientDataJSON"]))
        return b64url_decode(client_data["challenge"])
    except (ValueError, TypeError, KeyError) as exc:
        _refuse("malformed", "no readable clientDataJSON.challenge", exc)


def _text(value: object) -> str:
    """A py_webauthn value that is a str-valued Enum member or already a str."""
    return str(value.value) if isinstance(value, Enum) else str(value)


def _as_json(response: Response) -> str | dict[str, Any]:
    return response if isinstance(response, str) else dict(response)


def _origins(expected_origin: Origins) -> list[str]:
    return [expected_origin] if isinstance(expected_origin, str) else list(expected_origin)


def _check_client_data(
    client_data_json: bytes,
    *,
    ceremony: ClientDataType,
    expected_challenge: bytes,
    origins: list[str],
) -> CollectedClientData:
    """The clientDataJSON rules shared by both ceremonies (§7.1 steps 5-10, §7.2 steps 9-14)."""
    try:
        client_data = parse_client_data_json(client_data_json)
    except Exception as exc:
        _refuse("malformed", "clientDataJSON is not readable", exc)
    # §7.1 step 7 / §7.2 step 11: the ceremony type, so a registration's client
    # data can never pass as an assertion's or the other way round.
    if client_data.type != ceremony:
        _refuse("wrong_type", f"clientDataJSON.type is not {ceremony.value}")
    # §7.1 step 8 / §7.2 step 12: the challenge we issued or computed.
    if not hmac.compare_digest(client_data.challenge, expected_challenge):
        _refuse("challenge_mismatch", "clientDataJSON.challenge is not the expected challenge")
    # §7.1 step 9 / §7.2 step 13: an origin of ours (the issuer, for the CLI device too).
    if client_data.origin not in origins:
        _refuse("wrong_origin", "clientDataJSON.origin is not an expected origin")
    # L3 §7.1 / §7.2 (crossOrigin, topOrigin): our pages are never framed by
    # another site, so a cross-origin ceremony is not ours.
    if client_data.cross_origin:
        _refuse("cross_origin", "clientDataJSON.crossOrigin is true")
    # §7.1 step 10 / §7.2 step 14: a token binding status, if any, is a known one.
    if client_data.token_binding is not None and client_data.token_binding.status not in (
        TokenBindingStatus.SUPPORTED,
        TokenBindingStatus.PRESENT,
    ):
        _refuse("malformed", "clientDataJSON.tokenBinding.status is not a known status")
    return client_data


def _check_authenticator_data(auth_data: AuthenticatorData, *, rp_id: str) -> None:
    """The authenticatorData rules shared by both ceremonies."""
    # §7.1 step 13 / §7.2 step 15: signed for our RP ID.
    expected_hash = hashlib.sha256(rp_id.encode("utf-8")).digest()
    if not hmac.compare_digest(auth_data.rp_id_hash, expected_hash):
        _refuse("wrong_rp_id", "authenticatorData.rpIdHash is not SHA-256 of our RP ID")
    # §7.1 step 14 / §7.2 step 16: the user was present.
    if not auth_data.flags.up:
        _refuse("user_not_present", "the UP flag is not set")
    # §7.1 step 15 / §7.2 step 17: user verification is required for every
    # device action (DESIGN §4): biometrics or PIN on the device.
    if not auth_data.flags.uv:
        _refuse("user_not_verified", "the UV flag is not set")
    # L3 §6.1: the BS (backed up) flag may be set only with BE (backup eligible).
    if auth_data.flags.bs and not auth_data.flags.be:
        _refuse("malformed", "the BS flag is set without BE")


def _check_stored_public_key(cose_key: bytes) -> None:
    """A stored credential public key we can verify with, or a refusal."""
    try:
        decoded = decode_credential_public_key(cose_key)
        decoded_public_key_to_cryptography(decoded)
    except Exception as exc:
        _refuse("bad_public_key", "the stored credential public key cannot be used", exc)


def verify_registration(
    *,
    response: Response,
    expected_challenge: bytes,
    expected_origin: Origins,
    rp_id: str,
) -> RegisteredCredential:
    """Verify a ``navigator.credentials.create()`` response (WebAuthn §7.1).

    User verification is required. The caller still MUST check that the
    credential ID is not registered yet (§7.1 step 22) and consume the
    challenge once.
    """
    origins = _origins(expected_origin)
    try:
        credential = parse_registration_credential_json(_as_json(response))
    except Exception as exc:
        _refuse("malformed", "the registration response is not readable", exc)
    # FIDO: id is the base64url of rawId.
    if bytes_to_base64url(credential.raw_id) != credential.id:
        _refuse("malformed", "id is not the base64url of rawId")

    _check_client_data(
        credential.response.client_data_json,
        ceremony=ClientDataType.WEBAUTHN_CREATE,
        expected_challenge=expected_challenge,
        origins=origins,
    )
    try:
        attestation_object = parse_attestation_object(credential.response.attestation_object)
    except Exception as exc:
        _refuse("malformed", "attestationObject is not readable", exc)
    auth_data = attestation_object.auth_data
    _check_authenticator_data(auth_data, rp_id=rp_id)

    attested = auth_data.attested_credential_data
    # §6.5.1: a registration carries attested credential data (AT flag).
    if attested is None or not attested.credential_id or not attested.credential_public_key:
        _refuse("malformed", "no attested credential data")
    # L3 §7.1: credential IDs longer than 1023 bytes are refused.
    if len(attested.credential_id) > MAX_CREDENTIAL_ID_BYTES:
        _refuse("malformed", "credential ID longer than 1023 bytes")
    # The credential the response names is the one the authenticator attested.
    if not hmac.compare_digest(attested.credential_id, credential.raw_id):
        _refuse("malformed", "rawId is not the attested credential ID")
    # §7.1 step 16: the key algorithm is one we offered in pubKeyCredParams.
    try:
        alg = int(decode_credential_public_key(attested.credential_public_key).alg)
    except Exception as exc:
        _refuse("malformed", "the credential public key cannot be decoded", exc)
    if alg not in ALGORITHMS:
        _refuse("unsupported_algorithm", f"COSE algorithm {alg} was not offered")

    # §7.1 steps 18-19: the attestation statement, verified by py_webauthn,
    # which also repeats the checks above.
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=expected_challenge,
            expected_rp_id=rp_id,
            expected_origin=origins,
            require_user_presence=True,
            require_user_verification=True,
            supported_pub_key_algs=list(ALGORITHMS),
        )
    except Exception as exc:
        _refuse("bad_attestation", "the attestation statement did not verify", exc)

    transports = credential.response.transports or []
    return RegisteredCredential(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=aaguid_to_string(attested.aaguid),
        fmt=_text(verified.fmt),
        backup_eligible=auth_data.flags.be,
        backed_up=auth_data.flags.bs,
        user_verified=verified.user_verified,
        transports=tuple(_text(t) for t in transports),
    )


def verify_assertion(
    *,
    response: Response,
    expected_challenge: bytes,
    expected_origin: Origins,
    rp_id: str,
    credential_public_key: bytes,
    current_sign_count: int,
    refuse_sign_count_regression: bool = True,
    expected_credential_id: bytes | None = None,
    expected_user_handle: bytes | None = None,
    require_user_handle: bool = False,
    expected_backup_eligible: bool | None = None,
) -> VerifiedAssertion:
    """Verify a ``navigator.credentials.get()`` response (WebAuthn §7.2).

    User verification is required. ``expected_credential_id``: the credential
    that must answer (a device approval is aimed at one device).
    ``expected_user_handle``: the credential owner's user handle; with
    ``require_user_handle`` (a discoverable login, where the user was not
    identified before the ceremony) the response must carry it.
    ``expected_backup_eligible``: the BE flag stored at registration, which
    must not change.

    A signature counter that did not increase (§7.2 step 21) is refused with
    reason ``sign_count_regressed``; with ``refuse_sign_count_regression=False``
    it is returned flagged instead, for the caller to audit. The caller stores
    ``new_sign_count`` only when it is not flagged, and consumes the challenge
    once.
    """
    origins = _origins(expected_origin)
    try:
        credential = parse_authentication_credential_json(_as_json(response))
    except Exception as exc:
        _refuse("malformed", "the assertion response is not readable", exc)
    # FIDO: id is the base64url of rawId.
    if bytes_to_base64url(credential.raw_id) != credential.id:
        _refuse("malformed", "id is not the base64url of rawId")
    # §7.2 step 5: the credential is the one allowed to answer.
    if expected_credential_id is not None and not hmac.compare_digest(
        credential.raw_id, expected_credential_id
    ):
        _refuse("wrong_credential", "the assertion is from another credential")
    # §7.2 step 6: a userHandle, when present, is the identified user's.
    user_handle = credential.response.user_handle
    # §7.2 step 6: when the user was not identified before the ceremony, the
    # authenticator names them: userHandle MUST be present.
    if require_user_handle and not user_handle:
        _refuse("user_handle_missing", "no userHandle in a discoverable login")
    if (
        expected_user_handle is not None
        and user_handle is not None
        and not hmac.compare_digest(user_handle, expected_user_handle)
    ):
        _refuse("wrong_user", "userHandle is not the identified user's")
    # §7.2 step 7: the stored public key must be usable at all.
    _check_stored_public_key(credential_public_key)

    _check_client_data(
        credential.response.client_data_json,
        ceremony=ClientDataType.WEBAUTHN_GET,
        expected_challenge=expected_challenge,
        origins=origins,
    )
    try:
        auth_data = parse_authenticator_data(credential.response.authenticator_data)
    except Exception as exc:
        _refuse("malformed", "authenticatorData is not readable", exc)
    _check_authenticator_data(auth_data, rp_id=rp_id)
    # L3 §7.2 (backup state) / §6.1.3: BE is fixed when the credential is
    # made; a credential whose BE flag changed is not the one registered.
    if expected_backup_eligible is not None and auth_data.flags.be != expected_backup_eligible:
        _refuse("backup_eligibility_changed", "the BE flag differs from the registered one")

    # §7.2 step 20: the signature over authenticatorData || SHA-256(clientDataJSON).
    # py_webauthn refuses any counter that did not increase before it checks the
    # signature; given 0 as the stored count it never does, and step 21 follows
    # below, after the signature is known to be good.
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=expected_challenge,
            expected_rp_id=rp_id,
            expected_origin=origins,
            credential_public_key=credential_public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except Exception as exc:
        _refuse("bad_signature", "the signature did not verify", exc)

    # §7.2 step 21 (§6.1.1): if either counter is non-zero, the new one must be
    # greater than the stored one; otherwise the authenticator may be cloned or
    # the assertion replayed.
    new_count = verified.new_sign_count
    regressed = (new_count != 0 or current_sign_count != 0) and new_count <= current_sign_count
    if regressed:
        if refuse_sign_count_regression:
            _refuse(
                "sign_count_regressed",
                f"sign count {new_count} is not above the stored {current_sign_count}",
            )
        log.warning(
            "WebAuthn sign count %d not above stored %d (accepted, flagged)",
            new_count,
            current_sign_count,
        )

    return VerifiedAssertion(
        credential_id=verified.credential_id,
        new_sign_count=new_count,
        user_verified=verified.user_verified,
        backup_eligible=auth_data.flags.be,
        backed_up=auth_data.flags.bs,
        sign_count_regressed=regressed,
        user_handle=user_handle,
    )
