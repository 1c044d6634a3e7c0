"""The one exception type of the WebAuthn ceremonies."""

from __future__ import annotations

from typing import Literal, get_args

from flask_babel import lazy_gettext as _l

from ..errors import IdpError

Reason = Literal[
    # The response could not be parsed, or its structure breaks the spec.
    "malformed",
    # clientDataJSON.type is not the ceremony's ("webauthn.create" / "webauthn.get").
    "wrong_type",
    # clientDataJSON.challenge is not the challenge we issued (or computed).
    "challenge_mismatch",
    # clientDataJSON.origin is not one of ours.
    "wrong_origin",
    # clientDataJSON.crossOrigin is true: made inside a frame of another site.
    "cross_origin",
    # authenticatorData.rpIdHash is not SHA-256 of our RP ID.
    "wrong_rp_id",
    # The UP flag is not set.
    "user_not_present",
    # The UV flag is not set: no biometrics / PIN on the device.
    "user_not_verified",
    # The new credential's key algorithm is not one we offered.
    "unsupported_algorithm",
    # The attestation statement did not verify.
    "bad_attestation",
    # The assertion comes from another credential than the one expected.
    "wrong_credential",
    # The assertion's userHandle belongs to another user.
    "wrong_user",
    # No userHandle where it is required: a discoverable credential names its user.
    "user_handle_missing",
    # The BE (backup eligible) flag differs from the one registered.
    "backup_eligibility_changed",
    # The stored credential public key cannot be used (our data, not the client's).
    "bad_public_key",
    # The assertion signature did not verify against the stored public key.
    "bad_signature",
    # The signature counter did not increase: a replay or a cloned authenticator.
    "sign_count_regressed",
]

REASONS: tuple[Reason, ...] = get_args(Reason)


class WebAuthnError(IdpError):
    """A registration or assertion we refuse.

    ``reason`` is a short machine code (see ``Reason``) for logs, audit events
    and tests; ``explanation`` says in English which rule refused it. Neither
    the explanation nor any library text reaches the user: the message is the
    same for every reason.
    """

    error = "webauthn_failed"
    status = 400
    message = _l("Your device's confirmation could not be verified. Please try again.")

    def __init__(self, *, reason: Reason, explanation: str = "") -> None:
        super().__init__()
        self.reason: Reason = reason
        self.explanation = explanation or reason

    def __repr__(self) -> str:
        return f"WebAuthnError(reason={self.reason!r}, explanation={self.explanation!r})"
