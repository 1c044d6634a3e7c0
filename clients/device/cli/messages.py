"""What the device CLI says for each error code of the device API
(docs/device-api.md); the server's text is never parsed."""

from __future__ import annotations

from collections.abc import Mapping

from ..api import ApiError

MESSAGES = {
    "invalid_credentials": "The access number / e-mail or the password is not correct.",
    "ambiguous_email": (
        "This e-mail address belongs to several accounts: sign in with your access number."
    ),
    "account_locked": "This account is locked. Please contact support.",
    "password_change_required": (
        "An administrator asked you to choose a new password: sign in on the web first."
    ),
    "too_many_attempts": "Too many attempts.",
    "invalid_binding_code": "The binding code is not valid or has expired.",
    "invalid_enrolment": (
        "This key registration is unknown or has expired. Please start again with "
        "'idp-device enrol'."
    ),
    "wrong_code": "The confirmation code is not correct.",
    "webauthn_failed": "The server did not accept this device's signature.",
    "approval_not_found": "There is no such sign-in request.",
    "approval_expired": "This sign-in request has expired.",
    "approval_already_answered": "This sign-in request has already been answered.",
    "approvals_blocked": "Sign-in confirmations for this account are paused for a while.",
    "too_many_approvals": "Too many sign-in confirmations were requested.",
    "invalid_token": (
        "The server does not recognise this device (unknown device token). Enrol it again."
    ),
    "device_revoked": "This device has been removed from your account.",
    "device_pending": (
        "This device was added by restoration and can be used once its waiting period "
        "has passed; meanwhile your other devices may refuse it."
    ),
    "device_not_found": "There is no such device on your account.",
    "session_not_found": "There is no such session on your account; it may have ended already.",
    "device_not_pending": (
        "This device can no longer be refused: its waiting period has passed. Delete it "
        "instead ('idp-device delete DEVICE_ID')."
    ),
    "restore_failed": (
        "The identity could not be restored: the login ID or a restoration code is not "
        "correct, or the restoration has expired. Check them and start again with "
        "'idp-device restore'."
    ),
    "restoration_not_active": (
        "Restoration is not active for your ID. Activate it with 'idp-device restoration activate'."
    ),
    "restoration_already_active": (
        "Restoration is already active for your ID. For a new restoration code 1 use "
        "'idp-device restoration regenerate'."
    ),
    "email_required": (
        "Your account has no e-mail address: give the one the second restoration code "
        "should be sent to (--email)."
    ),
    "email_mismatch": (
        "Your account already has another e-mail address; restoration codes are sent to "
        "that one. Leave out --email."
    ),
    "invalid_activation": (
        "This activation has expired. Please start again with 'idp-device restoration activate'."
    ),
    "delivery_failed": "The server could not send the e-mail. Please try again later.",
    "invalid_nonce": "The confirmation expired before it was sent. Please try again.",
    "invalid_request": "The server refused the request as invalid.",
    "name_taken": "Another of your devices already has this name. Please choose another one.",
    "temporarily_unavailable": "The service is temporarily unavailable. Try again in a moment.",
    "server_error": "The server had an internal error.",
    "unexpected_response": "The server's answer is not a Freigabe device API answer.",
}
APPROVAL_MESSAGES = {
    **MESSAGES,
    "wrong_code": "The number does not match the one shown in the browser.",
    "too_many_attempts": "Too many wrong numbers. Please wait before trying again.",
}
RESTORE_MESSAGES = {
    **MESSAGES,
    "too_many_attempts": "Too many failed restoration attempts for this ID or from here.",
    "webauthn_failed": (
        "The server did not accept the new key; the restoration is used up. Please start "
        "again with 'idp-device restore'."
    ),
}
ACTIVATION_MESSAGES = {
    **MESSAGES,
    "invalid_request": "The server refused the request: the e-mail address is not valid.",
    "too_many_attempts": (
        "Too many wrong confirmation codes: the activation is void. Please start again."
    ),
}


def describe_error(exc: ApiError, messages: Mapping[str, str] = MESSAGES) -> str:
    text = messages.get(exc.error)
    if text is None:
        detail = f": {exc.description}" if exc.description else ""
        text = f"The server refused the request ({exc.error}, HTTP {exc.status}){detail}."
    if exc.retry_after:
        text += f" Try again in {exc.retry_after} seconds."
    return text
