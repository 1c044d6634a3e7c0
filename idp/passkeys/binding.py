"""A random value in the browser's signed session cookie that binds a passkey
sign-in challenge to this browser when there is no login transaction (straight
to the account page). Made with the login page, so the passkey autofill request
running beside the form need not write the session."""

from __future__ import annotations

from flask import session

from ..tokens import new_token

BROWSER_BINDING_KEY = "passkey_binding"


def browser_binding(*, create: bool) -> str | None:
    """This browser's random binding value (in its signed session cookie)."""
    value = session.get(BROWSER_BINDING_KEY)
    if not isinstance(value, str):
        if not create:
            return None
        value = new_token(16)
        session[BROWSER_BINDING_KEY] = value
    return value
