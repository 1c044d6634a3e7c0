"""The password check, with its throttling, shared by the login page and the
device app's enrolment (path A): the same rules and the same answers."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from .. import audit
from ..accounts.models import User
from ..accounts.service import find_user, remember_language
from ..errors import IdpError, InvalidRequest, Throttled
from ..extensions import give_connection_back
from ..state import idp
from ..store.ratelimit import Limit, LimitReached, Reservation, reserve


class FirstFactorError(IdpError):
    status = 401


class MissingCredentials(InvalidRequest, FirstFactorError):
    message = _l("Please enter your access number, user name or e-mail and your password.")


class TooManyAttempts(Throttled, FirstFactorError):
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


def account_limit() -> Limit:
    """Failed sign-ins per account (and per unknown identifier)."""
    settings = idp().settings
    return Limit(
        "login-account", settings.login_failures_per_account, settings.login_failure_window
    )


def ip_limit() -> Limit:
    """Failed sign-ins per IP address, whatever the method (password or passkey)."""
    settings = idp().settings
    return Limit("login-ip", settings.login_failures_per_ip, settings.login_failure_window)


def reserve_attempt(*counts: tuple[Limit, str]) -> Reservation:
    """Count a sign-in attempt before it is checked, or TooManyAttempts."""
    try:
        return reserve(idp().store, *counts)
    except LimitReached as exc:
        raise TooManyAttempts(retry_after=exc.retry_after) from None


def verify_password_login(
    *, identifier: str, password: str, ip: str, client_id: str | None = None, channel: str = "web"
) -> User:
    """The user these credentials belong to, or a FirstFactorError.

    Failures are counted per account and per IP; unknown identifiers are
    counted like accounts, so the lockout does not tell whether one exists.
    The attempt is counted before the password is checked (idp.store.ratelimit),
    so no more than the limit are ever checked, however many arrive at once;
    a right password gives it back (and clears the account's count).
    """
    if not identifier or not password:
        raise MissingCredentials()
    per_account, per_ip = account_limit(), ip_limit()
    lookup = find_user(identifier)
    if lookup.ambiguous_email:
        reserve_attempt((per_ip, ip))
        raise AmbiguousEmail()
    user = lookup.user
    account_key = (
        f"user:{user.id}"
        if user
        else "unknown:" + idp().digester.digest(identifier.lower(), purpose="login-id")
    )
    try:
        attempt = reserve(idp().store, (per_ip, ip), (per_account, account_key))
    except LimitReached as exc:
        if exc.limit == per_account:
            audit.record("login_throttled", user_id=user.id if user else None, channel=channel)
        raise TooManyAttempts(retry_after=exc.retry_after) from None
    stored_hash = user.password_hash if user else None
    with attempt.given_back_on_error(InvalidCredentials):
        # The hash may wait for the hashing threads (a burst of logins queues
        # there): no database connection is held meanwhile.
        give_connection_back()
        if not idp().passwords.verify(stored_hash, password) or not user:
            audit.record(
                "login_failed",
                user_id=user.id if user else None,
                client_id=client_id,
                channel=channel,
            )
            raise InvalidCredentials()
    # The right password: not a failed sign-in.
    attempt.give_back(per_ip)
    if not user.is_active:
        attempt.give_back(per_account)
        audit.record("login_refused_locked", user_id=user.id, channel=channel)
        raise AccountLocked()
    attempt.reset(per_account)
    if user.password_hash and idp().passwords.needs_rehash(user.password_hash):
        user.password_hash = idp().passwords.hash(password)
    remember_language(user)
    return user
