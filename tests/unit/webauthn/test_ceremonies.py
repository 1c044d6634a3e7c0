"""The CLI device's software authenticator against idp.webauthn's verification:
the round trips work, and each rule refuses on its own."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from clients.device.authenticator import (
    AAGUID,
    AuthenticatorError,
    CredentialKey,
    create_credential,
    get_assertion,
    get_assertion_for_options,
)
from idp.webauthn import (
    REASONS,
    WebAuthnError,
    authentication_options,
    b64url_decode,
    b64url_encode,
    challenge_of,
    credential_id_of,
    registration_options,
    verify_registration,
)

from .helpers import (
    CONTEXT,
    ISSUER,
    RP_ID,
    USER_HANDLE,
    answer,
    approval,
    check,
    register_device,
    rewrite,
    rewrite_client_data,
    rewrite_registration_auth_data,
    with_flags,
)

FLAG_UP, FLAG_UV, FLAG_BS = 0x01, 0x04, 0x10


def new_registration(
    *, rp_id: str = RP_ID, origin: str = ISSUER, user_verified: bool = True
) -> tuple[bytes, dict[str, Any]]:
    options = registration_options(
        rp_id=rp_id,
        rp_name="Freigabe",
        user_handle=USER_HANDLE,
        user_name="alice",
        user_display_name="Alice",
    )
    _key, response = create_credential(
        options_json=options.json, origin=origin, user_verified=user_verified
    )
    return options.challenge, response


def verify_new(
    response: dict[str, Any],
    challenge: bytes,
    *,
    origin: str = ISSUER,
    rp_id: str = RP_ID,
) -> Any:
    return verify_registration(
        response=response, expected_challenge=challenge, expected_origin=origin, rp_id=rp_id
    )


def reason_of(excinfo: pytest.ExceptionInfo[WebAuthnError]) -> str:
    return excinfo.value.reason


# --- options ----------------------------------------------------------------------


def test_registration_options_require_user_verification_and_offer_our_algorithms() -> None:
    options = registration_options(
        rp_id=RP_ID,
        rp_name="Freigabe",
        user_handle=USER_HANDLE,
        user_name="alice",
        user_display_name="Alice",
        exclude_credential_ids=[b"\x01" * 16],
    )
    data = json.loads(options.json)
    assert data["authenticatorSelection"]["userVerification"] == "required"
    assert data["authenticatorSelection"]["residentKey"] == "preferred"
    assert [p["alg"] for p in data["pubKeyCredParams"]] == [-7, -8, -257]  # ES256, EdDSA, RS256
    assert data["attestation"] == "none"
    assert data["rp"] == {"id": RP_ID, "name": "Freigabe"}
    assert b64url_decode(data["user"]["id"]) == USER_HANDLE
    assert b64url_decode(data["challenge"]) == options.challenge
    assert len(options.challenge) == 32
    assert data["excludeCredentials"] == [{"id": b64url_encode(b"\x01" * 16), "type": "public-key"}]


def test_authentication_options_require_user_verification() -> None:
    challenge = approval()
    options = authentication_options(
        rp_id=RP_ID, allow_credential_ids=[b"\x02" * 16], challenge=challenge
    )
    data = json.loads(options.json)
    assert data["userVerification"] == "required"
    assert data["rpId"] == RP_ID
    assert options.challenge == challenge
    assert b64url_decode(data["challenge"]) == challenge
    assert data["allowCredentials"] == [{"id": b64url_encode(b"\x02" * 16), "type": "public-key"}]


def test_options_refuse_short_challenges_and_unknown_preferences() -> None:
    # WebAuthn §13.4.3: at least 16 random bytes.
    with pytest.raises(ValueError):
        authentication_options(rp_id=RP_ID, challenge=b"short")
    with pytest.raises(ValueError):
        registration_options(
            rp_id=RP_ID,
            rp_name="Freigabe",
            user_handle=USER_HANDLE,
            user_name="alice",
            user_display_name="Alice",
            attestation="whatever",
        )
    with pytest.raises(ValueError):  # §5.4.3: user.id is at most 64 bytes
        registration_options(
            rp_id=RP_ID,
            rp_name="Freigabe",
            user_handle=b"\x00" * 65,
            user_name="alice",
            user_display_name="Alice",
        )


# --- registration -----------------------------------------------------------------


def test_registration_round_trip() -> None:
    device = register_device()
    credential = device.credential
    assert credential.credential_id == device.key.credential_id
    assert credential.public_key == device.key.public_key_cose()
    assert credential.sign_count == 0
    assert credential.aaguid == str(uuid.UUID(bytes=AAGUID))
    assert credential.fmt == "none"
    assert credential.user_verified is True
    assert credential.backup_eligible is False
    assert credential.backed_up is False
    assert credential.transports == ("internal",)


def test_registration_without_user_verification_is_refused() -> None:
    # WebAuthn §7.1 step 15: UV required for every device (DESIGN §4).
    challenge, response = new_registration(user_verified=False)
    with pytest.raises(WebAuthnError) as excinfo:
        verify_new(response, challenge)
    assert reason_of(excinfo) == "user_not_verified"


def test_registration_without_user_presence_is_refused() -> None:
    # WebAuthn §7.1 step 14.
    challenge, response = new_registration()
    changed = rewrite_registration_auth_data(response, lambda a: with_flags(a, clear=FLAG_UP))
    with pytest.raises(WebAuthnError) as excinfo:
        verify_new(changed, challenge)
    assert reason_of(excinfo) == "user_not_present"


def test_registration_from_another_origin_is_refused() -> None:
    # WebAuthn §7.1 step 9: a port is part of the origin.
    challenge, response = new_registration(origin="http://localhost:5001")
    with pytest.raises(WebAuthnError) as excinfo:
        verify_new(response, challenge)
    assert reason_of(excinfo) == "wrong_origin"


def test_registration_for_another_rp_id_is_refused() -> None:
    # WebAuthn §7.1 step 13: the client may scope a credential to a parent
    # domain of the origin; the server accepts only its own RP ID.
    origin = "http://login.example.com"
    challenge, response = new_registration(rp_id="example.com", origin=origin)
    with pytest.raises(WebAuthnError) as excinfo:
        verify_new(response, challenge, origin=origin, rp_id="login.example.com")
    assert reason_of(excinfo) == "wrong_rp_id"


def test_registration_with_another_challenge_is_refused() -> None:
    # WebAuthn §7.1 step 8.
    _challenge, response = new_registration()
    with pytest.raises(WebAuthnError) as excinfo:
        verify_new(response, b"\x00" * 32)
    assert reason_of(excinfo) == "challenge_mismatch"


def test_client_data_of_another_ceremony_is_refused() -> None:
    # WebAuthn §7.1 step 7.
    challenge, response = new_registration()
    changed = rewrite_client_data(response, type="webauthn.get")
    with pytest.raises(WebAuthnError) as excinfo:
        verify_new(changed, challenge)
    assert reason_of(excinfo) == "wrong_type"


def test_cross_origin_registration_is_refused() -> None:
    # WebAuthn L3 §7.1 (crossOrigin): we are never framed by another site.
    challenge, response = new_registration()
    changed = rewrite_client_data(response, crossOrigin=True)
    with pytest.raises(WebAuthnError) as excinfo:
        verify_new(changed, challenge)
    assert reason_of(excinfo) == "cross_origin"


def test_backed_up_without_backup_eligible_is_refused() -> None:
    # WebAuthn L3 §6.1: BS may be set only together with BE.
    challenge, response = new_registration()
    changed = rewrite_registration_auth_data(response, lambda a: with_flags(a, set_=FLAG_BS))
    with pytest.raises(WebAuthnError) as excinfo:
        verify_new(changed, challenge)
    assert reason_of(excinfo) == "malformed"


def test_registration_with_an_algorithm_not_offered_is_refused() -> None:
    # WebAuthn §7.1 step 16: the key's alg must be one of pubKeyCredParams.
    challenge, response = new_registration()

    def es512(auth_data: bytes) -> bytes:
        # rpIdHash, flags, signCount, AAGUID, credential ID length and ID, COSE key.
        start = 37 + 16 + 2 + int.from_bytes(auth_data[53:55], "big")
        cose = cbor2.loads(auth_data[start:])
        assert cose[3] == -7  # ES256
        cose[3] = -36  # ES512, not offered
        return auth_data[:start] + bytes(cbor2.dumps(cose, canonical=True))

    changed = rewrite_registration_auth_data(response, es512)
    with pytest.raises(WebAuthnError) as excinfo:
        verify_new(changed, challenge)
    assert reason_of(excinfo) == "unsupported_algorithm"


def test_registration_naming_another_credential_id_is_refused() -> None:
    challenge, response = new_registration()
    response["id"] = response["rawId"] = b64url_encode(b"\x07" * 32)
    with pytest.raises(WebAuthnError) as excinfo:
        verify_new(response, challenge)
    assert reason_of(excinfo) == "malformed"


# --- assertions -------------------------------------------------------------------


def test_approval_round_trip() -> None:
    device = register_device()
    challenge = approval()
    response = answer(device, challenge)
    verified = check(
        device,
        json.dumps(response),  # as a JSON string, as a request body carries it
        challenge,
        expected_credential_id=device.credential.credential_id,
        expected_user_handle=USER_HANDLE,
    )
    assert verified.credential_id == device.credential.credential_id
    assert verified.new_sign_count == 1
    assert verified.user_verified is True
    assert verified.sign_count_regressed is False
    assert verified.backup_eligible is False
    assert verified.backed_up is False
    assert verified.user_handle == USER_HANDLE
    assert credential_id_of(response) == device.credential.credential_id


def test_assertion_for_server_options_round_trip() -> None:
    device = register_device()
    options = authentication_options(
        rp_id=RP_ID, allow_credential_ids=[device.credential.credential_id]
    )
    response = get_assertion_for_options(key=device.key, options_json=options.json, origin=ISSUER)
    assert check(device, response, options.challenge).new_sign_count == 1

    others = authentication_options(rp_id=RP_ID, allow_credential_ids=[b"\x09" * 32])
    with pytest.raises(AuthenticatorError):
        get_assertion_for_options(key=device.key, options_json=others.json, origin=ISSUER)


def test_assertion_without_user_verification_is_refused() -> None:
    # WebAuthn §7.2 step 17: approving needs biometrics / the PIN (DESIGN §4).
    device = register_device()
    challenge = approval()
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, answer(device, challenge, user_verified=False), challenge)
    assert reason_of(excinfo) == "user_not_verified"


def test_assertion_from_another_origin_is_refused() -> None:
    # WebAuthn §7.2 step 13.
    device = register_device()
    challenge = approval()
    response = answer(device, challenge, origin="http://localhost:5001")
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, response, challenge)
    assert reason_of(excinfo) == "wrong_origin"


def test_assertion_for_another_rp_id_is_refused() -> None:
    # WebAuthn §7.2 step 15: the origin is right, the RP ID (a parent domain) is not ours.
    device = register_device()
    challenge = approval()
    origin = "http://login.example.com"
    response = answer(device, challenge, rp_id="example.com", origin=origin)
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, response, challenge, expected_origin=origin, rp_id="login.example.com")
    assert reason_of(excinfo) == "wrong_rp_id"


@pytest.mark.parametrize(
    "expected",
    [
        approval(decision="deny"),  # the user approved; the server expects a denial
        approval(code="24"),  # another typed code
        approval(approval_id="apr_2"),  # another approval
    ],
    ids=["decision", "code", "approval"],
)
def test_assertion_over_another_statement_is_refused(expected: bytes) -> None:
    # WebAuthn §7.2 step 12; DESIGN §3 step 6: the challenge is the decision.
    device = register_device()
    response = answer(device, approval(decision="approve", code="42", approval_id="apr_1"))
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, response, expected)
    assert reason_of(excinfo) == "challenge_mismatch"


def test_signature_by_another_key_is_refused() -> None:
    # WebAuthn §7.2 step 20: another credential's assertion, relabelled with this
    # credential's ID, does not verify against this credential's public key.
    device, other = register_device(), register_device()
    challenge = approval()
    response = answer(other, challenge)
    response["id"] = response["rawId"] = b64url_encode(device.credential.credential_id)
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, response, challenge, expected_credential_id=device.credential.credential_id)
    assert reason_of(excinfo) == "bad_signature"


def test_assertion_by_another_credential_is_refused() -> None:
    # WebAuthn §7.2 step 5: the approval is aimed at one device.
    device, other = register_device(), register_device()
    challenge = approval()
    with pytest.raises(WebAuthnError) as excinfo:
        check(
            device,
            answer(other, challenge),
            challenge,
            expected_credential_id=device.credential.credential_id,
        )
    assert reason_of(excinfo) == "wrong_credential"


def test_assertion_for_another_user_is_refused() -> None:
    # WebAuthn §7.2 step 6.
    device = register_device()
    challenge = approval()
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, answer(device, challenge), challenge, expected_user_handle=b"\xff" * 16)
    assert reason_of(excinfo) == "wrong_user"


def test_challenge_of_names_the_challenge_a_response_answers() -> None:
    device = register_device()
    challenge = approval()
    assert challenge_of(answer(device, challenge)) == challenge
    for broken in ({}, {"response": {"clientDataJSON": "!"}}, {"response": []}):
        with pytest.raises(WebAuthnError) as excinfo:
            challenge_of(broken)
        assert reason_of(excinfo) == "malformed"


def test_discoverable_login_needs_the_user_handle() -> None:
    # WebAuthn §7.2 step 6: the user was not identified before the ceremony.
    device = register_device()
    challenge = approval()
    assert check(device, answer(device, challenge), challenge, require_user_handle=True)
    device.key.user_handle = None
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, answer(device, challenge), challenge, require_user_handle=True)
    assert reason_of(excinfo) == "user_handle_missing"
    # Without the requirement (a device aimed at by an approval) it may be absent.
    assert check(device, answer(device, challenge), challenge, current_sign_count=2)


def test_backup_eligibility_must_not_change() -> None:
    # WebAuthn L3 §6.1.3: BE is fixed when the credential is created.
    device = register_device()
    challenge = approval()
    assert check(device, answer(device, challenge), challenge, expected_backup_eligible=False)
    device.key.backup_eligible = True
    with pytest.raises(WebAuthnError) as excinfo:
        check(
            device,
            answer(device, challenge),
            challenge,
            current_sign_count=1,
            expected_backup_eligible=False,
        )
    assert reason_of(excinfo) == "backup_eligibility_changed"
    verified = check(device, answer(device, challenge), challenge, current_sign_count=2)
    assert verified.backup_eligible and not verified.backed_up


def test_tampered_authenticator_data_is_refused() -> None:
    # WebAuthn §7.2 step 20: the signature covers authenticatorData (here its counter).
    device = register_device()
    challenge = approval()
    response = answer(device, challenge)
    changed = rewrite(response, "authenticatorData", lambda a: a[:-1] + bytes([a[-1] ^ 0x08]))
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, changed, challenge)
    assert reason_of(excinfo) == "bad_signature"


def test_tampered_client_data_is_refused() -> None:
    # WebAuthn §7.2 steps 19-20: the signature covers SHA-256(clientDataJSON).
    device = register_device()
    challenge = approval()
    changed = rewrite_client_data(answer(device, challenge), extra="added later")
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, changed, challenge)
    assert reason_of(excinfo) == "bad_signature"


def test_replayed_assertion_is_refused_by_default_and_flagged_otherwise() -> None:
    # WebAuthn §7.2 step 21 / §6.1.1: a counter that did not increase.
    device = register_device()
    challenge = approval()
    response = answer(device, challenge)
    first = check(device, response, challenge)
    assert first.new_sign_count == 1

    with pytest.raises(WebAuthnError) as excinfo:
        check(device, response, challenge, current_sign_count=first.new_sign_count)
    assert reason_of(excinfo) == "sign_count_regressed"

    flagged = check(
        device,
        response,
        challenge,
        current_sign_count=first.new_sign_count,
        refuse_sign_count_regression=False,
    )
    assert flagged.sign_count_regressed is True
    assert flagged.new_sign_count == 1


@pytest.mark.parametrize(
    ("stored", "new", "regressed"),
    [
        (0, 0, False),  # an authenticator without a counter: both zero is fine
        (0, 1, False),
        (4, 5, False),
        (5, 5, True),
        (5, 3, True),
        (5, 0, True),  # a counter that went back to zero
    ],
)
def test_sign_count_rule(stored: int, new: int, regressed: bool) -> None:
    # WebAuthn §7.2 step 21: if either count is non-zero, new must exceed stored.
    device = register_device()
    challenge = approval()
    response = answer(device, challenge, sign_count=new)
    verified = check(
        device,
        response,
        challenge,
        current_sign_count=stored,
        refuse_sign_count_regression=False,
    )
    assert verified.sign_count_regressed is regressed
    assert verified.new_sign_count == new


def test_bad_signature_is_reported_before_the_counter() -> None:
    # The counter is judged only for a genuine signature: a forger with a low
    # counter must not be able to raise a clone alarm.
    device, other = register_device(), register_device()
    challenge = approval()
    response = answer(other, challenge, sign_count=1)
    response["id"] = response["rawId"] = b64url_encode(device.credential.credential_id)
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, response, challenge, current_sign_count=9)
    assert reason_of(excinfo) == "bad_signature"


@pytest.mark.parametrize(
    "response",
    [
        "not json",
        "[]",
        {},
        {"id": "AA", "rawId": "AA", "type": "public-key", "response": {}},
        {"id": "AA", "rawId": "AAAA", "type": "public-key", "response": {}},
    ],
)
def test_malformed_assertions_are_refused(response: Any) -> None:
    device = register_device()
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, response, approval())
    assert reason_of(excinfo) == "malformed"


def test_id_that_is_not_raw_id_is_refused() -> None:
    device = register_device()
    challenge = approval()
    response = answer(device, challenge)
    response["id"] = b64url_encode(b"\x01" * 32)
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, response, challenge)
    assert reason_of(excinfo) == "malformed"


def test_unusable_stored_public_key_is_refused() -> None:
    device = register_device()
    challenge = approval()
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, answer(device, challenge), challenge, credential_public_key=b"\xa0")
    assert reason_of(excinfo) == "bad_public_key"


def test_errors_never_carry_library_text() -> None:
    device = register_device()
    challenge = approval()
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, answer(device, challenge, origin="http://localhost:5001"), challenge)
    error = excinfo.value
    assert error.error == "webauthn_failed"
    assert error.status == 400
    assert str(error) == str(WebAuthnError.message)
    assert "localhost" not in str(error)
    assert error.reason in REASONS


def test_client_refuses_an_rp_id_foreign_to_the_origin() -> None:
    # WebAuthn §5.1.3: a client signs only for the origin's host or a parent domain.
    device = register_device()
    with pytest.raises(AuthenticatorError):
        get_assertion(key=device.key, rp_id="evil.example", origin=ISSUER, challenge=approval())
    options = registration_options(
        rp_id="evil.example",
        rp_name="Evil",
        user_handle=USER_HANDLE,
        user_name="alice",
        user_display_name="Alice",
    )
    with pytest.raises(AuthenticatorError):
        create_credential(options_json=options.json, origin=ISSUER)


def test_context_is_what_the_device_signs() -> None:
    # The server computes the challenge from its own copy of the context: a
    # device shown another context answers another statement.
    from idp.webauthn import approval_challenge

    device = register_device()
    shown = {**CONTEXT, "client": "Evil Corp"}
    signed = approval_challenge(approval_id="apr_1", decision="approve", code="42", context=shown)
    with pytest.raises(WebAuthnError) as excinfo:
        check(device, answer(device, signed), approval())
    assert reason_of(excinfo) == "challenge_mismatch"


def test_attestation_statement_is_verified() -> None:
    # WebAuthn §7.1 step 19 (py_webauthn's part): a "packed" self attestation
    # signed by the new key passes; one with a signature by another key does not.
    options = registration_options(
        rp_id=RP_ID,
        rp_name="Freigabe",
        user_handle=USER_HANDLE,
        user_name="alice",
        user_display_name="Alice",
        attestation="direct",
    )
    key, response = create_credential(options_json=options.json, origin=ISSUER)
    stranger, _ = create_credential(options_json=options.json, origin=ISSUER)
    client_data_hash = hashlib.sha256(
        b64url_decode(response["response"]["clientDataJSON"])
    ).digest()

    def packed(signer: CredentialKey) -> dict[str, Any]:
        def change(raw: bytes) -> bytes:
            attestation = cbor2.loads(raw)
            signed = attestation["authData"] + client_data_hash
            signature = signer.private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
            attestation["fmt"] = "packed"
            attestation["attStmt"] = {"alg": -7, "sig": signature}
            return bytes(cbor2.dumps(attestation, canonical=True))

        return rewrite(response, "attestationObject", change)

    assert verify_new(packed(key), options.challenge).fmt == "packed"
    with pytest.raises(WebAuthnError) as excinfo:
        verify_new(packed(stranger), options.challenge)
    assert reason_of(excinfo) == "bad_attestation"


@pytest.mark.parametrize(
    "response",
    ["not json", {}, {"id": "AA", "rawId": "AA", "type": "public-key", "response": {}}],
)
def test_malformed_registrations_are_refused(response: Any) -> None:
    with pytest.raises(WebAuthnError) as excinfo:
        verify_new(response, b"\x00" * 32)
    assert reason_of(excinfo) == "malformed"
