"""WebAuthn for devices and passkeys: options, verification, signed-decision challenges.

The only package of ours that imports py_webauthn (STYLE rule 4); its
exceptions come out as ``WebAuthnError`` with a ``reason`` code.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..encoding import b64url_decode, b64url_encode, canonical_json
from .ceremonies import (
    ALGORITHMS,
    PublicKeyOptions,
    RegisteredCredential,
    VerifiedAssertion,
    authentication_options,
    challenge_of,
    credential_id_of,
    registration_options,
    verify_assertion,
    verify_registration,
)
from .challenges import (
    CHALLENGE_VERSION,
    Decision,
    action_challenge,
    approval_challenge,
    context_digest,
)
from .errors import REASONS, Reason, WebAuthnError

# A registration or authentication response as navigator.credentials returns
# it after toJSON(), unverified: any JSON object (the ceremonies check it).
CredentialJSON = Mapping[str, object]

__all__ = [
    "ALGORITHMS",
    "CHALLENGE_VERSION",
    "REASONS",
    "CredentialJSON",
    "Decision",
    "PublicKeyOptions",
    "Reason",
    "RegisteredCredential",
    "VerifiedAssertion",
    "WebAuthnError",
    "action_challenge",
    "approval_challenge",
    "authentication_options",
    "b64url_decode",
    "b64url_encode",
    "canonical_json",
    "challenge_of",
    "context_digest",
    "credential_id_of",
    "registration_options",
    "verify_assertion",
    "verify_registration",
]
