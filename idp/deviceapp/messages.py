"""Texts the device app's scripts show, localised on the server.

The page carries ``APP_MESSAGES`` as JSON (``<script type="application/json">``,
never executed); the service worker fetches ``NOTIFICATION_MESSAGES`` from
``/app/messages.json``. Placeholders are ``%(name)s``, filled in by the script,
so the catalogs check them like every other message. Error texts come from the
server's own ``error_description`` (already in the user's language); these are
the texts that no server answer carries.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

APP_MESSAGES: Mapping[str, LazyString] = {
    # enrolment
    "device_name_needed": _l("Please give this device a name."),
    "code_sent_sms": _l("A confirmation code was sent by text message to %(destination)s."),
    "code_sent_email": _l("A confirmation code was sent by e-mail to %(destination)s."),
    "create_key": _l(
        "Confirm with your fingerprint, face or screen lock to create this device's key …"
    ),
    "enrolled": _l("This browser is now a device of access number %(access_number)s."),
    "already_enrolled": _l("This browser is already set up as a device."),
    "webauthn_missing": _l(
        "This browser cannot create keys for sign-in confirmations (WebAuthn is not available)."
    ),
    "key_exists": _l("This browser's key is already registered for your account."),
    "webauthn_cancelled": _l(
        "The confirmation with your fingerprint, face or screen lock was cancelled or timed "
        "out. Please try again."
    ),
    # errors without a server answer
    "network_error": _l("The server cannot be reached. Check the connection and try again."),
    "unexpected": _l("The server's answer could not be understood."),
    "retry_after": _l("Try again in %(seconds)s seconds."),
    # the device is gone
    "revoked": _l(
        "This device has been removed from your account, and its data in this browser was "
        "deleted. You can set it up again."
    ),
    "invalid_token": _l(
        "The server does not recognise this device. Its data in this browser was deleted. "
        "Please set it up again."
    ),
    "this_device_deleted": _l(
        "This device was deleted from your account, and its data in this browser was deleted."
    ),
    # approvals
    "account": _l("Access number %(access_number)s · this device: %(name)s"),
    "approval_title": _l("Sign-in to %(client)s"),
    "approval_from": _l("from %(ip)s, %(time)s"),
    "unknown_ip": _l("an unknown address"),
    "code_needed": _l("Type the two-digit number shown in the browser."),
    "unlock": _l("Confirm with your fingerprint, face or screen lock …"),
    "approved": _l("Sign-in to %(client)s confirmed. The browser continues by itself."),
    "denied": _l("Sign-in to %(client)s refused."),
    "reported": _l("Sign-in to %(client)s refused and reported as not made by you."),
    "no_longer_waiting": _l("This sign-in request is no longer waiting (%(status)s)."),
    "status_expired": _l("expired"),
    "status_cancelled": _l("cancelled"),
    "status_approved": _l("confirmed"),
    "status_denied": _l("refused"),
    "expires_in": _l("This request expires in %(seconds)s seconds."),
    # devices
    "this_device": _l("this device"),
    "added": _l("Added %(date)s"),
    "last_used": _l("last used %(date)s"),
    "never_used": _l("not used yet"),
    "kind_iphone": _l("iPhone"),
    "kind_ipad": _l("iPad"),
    "kind_android": _l("Android"),
    "kind_browser": _l("Browser"),
    "kind_cli": _l("Command line"),
    "via_password_sms": _l("set up with password and text message"),
    "via_password_email": _l("set up with password and e-mail"),
    "via_binding_code": _l("set up with a code from the account page"),
    "via_restoration": _l("set up by restoring your ID"),
    "delete": _l("Delete"),
    "delete_named": _l("Delete %(name)s"),
    "delete_question": _l("Delete the device “%(name)s”? It can no longer confirm sign-ins."),
    "device_deleted": _l("The device “%(name)s” was deleted."),
    # push
    "push_on": _l(
        "Notifications are on: sign-in requests reach this device even when this page is closed."
    ),
    "push_ask": _l(
        "Turn on notifications to learn of sign-in requests while this page is closed. "
        "Until then, this page checks for them while it is open."
    ),
    "push_denied": _l(
        "Notifications are blocked in this browser. This page checks for sign-in requests "
        "while it is open."
    ),
    "push_unavailable": _l(
        "Push notifications are unavailable. This page checks for sign-in requests while it "
        "is open."
    ),
}

NOTIFICATION_MESSAGES: Mapping[str, LazyString] = {
    "title": _l("Sign-in request"),
    "body": _l("A sign-in to your account waits for your confirmation. Open it to check it."),
}


def localised(messages: Mapping[str, LazyString]) -> dict[str, str]:
    """The texts in the current request's language."""
    return {key: str(text) for key, text in messages.items()}
