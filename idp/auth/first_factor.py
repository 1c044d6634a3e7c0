"""The password check, with its throttling, shared by the login page and the
device app's enrolment (path A): the same rules and the same answers."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from .. import audit, idp
from ..accounts.models import User
from ..accounts.service import find_user
from ..errors import IdpError
from ..extensions import db
from ..store.ratelimit import FailureCounter, Limit


class FirstFactorError(IdpError):
    status = 401


class MissingCredentials(FirstFactorError):
    error = "invalid_request"
    status = 400
    message = _l("Please enter your access number, user name or e-mail and your password.")


class TooManyAttempts(FirstFactorError):
    error = "too_many_attempts"
    status = 429
    message = _l("Too many failed sign-in attempts. Please wait a few minutes.")


class AmbiguousEmail(FirstFactorError):
    error = "ambiguous_email"
    status = 400
    message = _l(
        "This e-mail address is used by several accounts. Please sign in with your access number."
    )


class InvalidCredentials(FirstFactorError):
    # The same for an unknown account and a wrong password.
    error = "invalid_credentials"
    message = _l("The sign-in details are not correct.")


class AccountLocked(FirstFactorError):
    error = "account_locked"
    status = 403
    message = _l("This account is locked. Please contact your administrator.")


def _counters() -> tuple[FailureCounter, FailureCounter]:
    settings = idp().settings
    window = settings.login_failure_window
    store = idp().store
    return (
        FailureCounter(store, Limit("login-account", settings.login_failures_per_account, window)),
        ip_failures(),
    )


def ip_failures() -> FailureCounter:
    """Failed sign-ins per IP address, whatever the method (password or passkey)."""
    settings = idp().settings
    return FailureCounter(
        idp().store,
        Limit("login-ip", settings.login_failures_per_ip, settings.login_failure_window),
    )


def verify_password_login(
    *, identifier: str, password: str, ip: str, client_id: str | None = None, channel: str = "web"
) -> User:
    """The user these credentials belong to, or a FirstFactorError.

    Failures are counted per account and per IP; unknown identifiers are
    counted like accounts, so the lockout does not tell whether one exists.
    """
    if not identifier or not password:
        raise MissingCredentials()
    per_account, per_ip = _counters()
    if per_ip.blocked(ip):
        raise TooManyAttempts(retry_after=per_ip.retry_after(ip))
    lookup = find_user(identifier)
    if lookup.ambiguous_email:
        per_ip.record_failure(ip)
        raise AmbiguousEmail()
    user = lookup.user
    account_key = (
        f"user:{user.id}"
        if user
        else "unknown:" + idp().digester.digest(identifier.lower(), purpose="login-id")
    )
    if per_account.blocked(account_key):
        audit.record("login_throttled", user_id=user.id if user else None, channel=channel)
        raise TooManyAttempts(retry_after=per_account.retry_after(account_key))
    if not idp().passwords.verify(user.password_hash if user else None, password) or not user:
        per_account.record_failure(account_key)
        per_ip.record_failure(ip)
        audit.record(
            "login_failed",
            user_id=user.id if user else None,
            client_id=client_id,
            channel=channel,
        )
        raise InvalidCredentials()
    if not user.is_active:
        audit.record("login_refused_locked", user_id=user.id, channel=channel)
        raise AccountLocked()
    per_account.reset(account_key)
    if user.password_hash and idp().passwords.needs_rehash(user.password_hash):
        user.password_hash = idp().passwords.hash(password)
        db.session.commit()
    return user
