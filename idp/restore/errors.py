"""The errors of restoration (its activation and restoring a device)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..errors import IdpError, InvalidRequest, Throttled


class RestoreError(IdpError):
    error = "restore_error"
    status = 400


class RestoreFailed(RestoreError):
    # The same for an unknown login ID, restoration not active, a wrong code 1
    # or code 2, and an unknown, expired or used attempt: nothing tells which.
    error = "restore_failed"
    message = _l(
        "The identity could not be restored. Check the login ID and the restoration "
        "codes, or start again."
    )


class TooManyRestoreAttempts(Throttled, RestoreError):
    message = _l("Too many failed attempts. Please wait before trying again.")


class InvalidRestoreRequest(InvalidRequest, RestoreError):
    """Malformed input (400 invalid_request)."""


class RestorationNotActive(RestoreError):
    error = "restoration_not_active"
    status = 409
    message = _l("Restoration is not active for this ID. Please activate it first.")


class RestorationAlreadyActive(RestoreError):
    error = "restoration_already_active"
    status = 409
    message = _l("Restoration is already active for this ID.")


class EmailRequired(RestoreError):
    error = "email_required"
    message = _l(
        "Please enter an e-mail address. The second restoration code will be sent to it "
        "when you restore your ID."
    )


class EmailMismatch(RestoreError):
    error = "email_mismatch"
    message = _l("Your account already has an e-mail address; restoration codes are sent to it.")


class InvalidActivation(RestoreError):
    error = "invalid_activation"
    status = 404
    message = _l("This activation has expired. Please start again.")


class DeviceNotPending(RestoreError):
    error = "device_not_pending"
    status = 409
    message = _l("This device can no longer be refused. Remove it from your devices instead.")
