"""The errors of passkey ceremonies, and what a browser is told when py_webauthn
refused a response."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..errors import IdpError, InvalidRequest
from ..webauthn import WebAuthnError


class PasskeyError(IdpError):
    error = "passkey_failed"
    status = 401
    message = _l("Your passkey could not be verified. Please try again.")


class InvalidPasskeyRequest(InvalidRequest, PasskeyError):
    """Malformed input (400 invalid_request)."""


class PasskeyRequestExpired(PasskeyError):
    # No challenge: never asked for, expired, or used already (a replay).
    error = "passkey_expired"
    status = 400
    message = _l("This passkey request has expired or was already used. Please try again.")


class UnknownPasskey(PasskeyError):
    # The same for a credential of nobody and a device's credential.
    error = "passkey_unknown"
    message = _l(
        "This passkey is not registered with Freigabe. Sign in with your password, "
        "or choose another passkey."
    )


class PasskeyNotVerified(PasskeyError):
    error = "passkey_not_verified"
    message = _l(
        "Your passkey was used without checking your fingerprint, face or PIN. "
        "Please try again and confirm it is you."
    )


class PasskeyOfAnotherAccount(PasskeyError):
    error = "passkey_wrong_user"
    message = _l(
        "This passkey belongs to another account. Use a passkey of the account you signed in with."
    )


class NoPasskey(PasskeyError):
    error = "no_passkey"
    status = 400
    message = _l("No passkey is registered for your account.")


class PasskeyAlreadyRegistered(PasskeyError):
    error = "passkey_already_registered"
    status = 400
    message = _l("This passkey is already registered.")


class PasskeyNameTaken(InvalidRequest, PasskeyError):
    error = "name_taken"
    message = _l(
        "You already have a passkey with this name. Please choose another name, so that "
        "you can tell them apart."
    )


class PasskeyNotFound(PasskeyError):
    error = "passkey_not_found"
    status = 404
    message = _l("This passkey does not exist.")


class MfaRequired(PasskeyError):
    error = "mfa_required"
    status = 403
    message = _l(
        "To add or remove passkeys, sign in with a passkey or with a confirmation in "
        "the Freigabe app first."
    )


class ReauthenticationRequired(PasskeyError):
    error = "reauthentication_required"
    status = 403
    message = _l("For your security, please sign in again before you change your passkeys.")


def client_error(exc: WebAuthnError) -> PasskeyError:
    """What the browser is told; the reason itself goes to the audit log only."""
    if exc.reason == "user_not_verified":
        return PasskeyNotVerified()
    if exc.reason == "malformed":
        return InvalidPasskeyRequest()
    return PasskeyError()
