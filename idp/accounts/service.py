"""Creating users and finding them by the identifiers people type."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import i18n, subjects
from ..extensions import db
from .models import User, UserStatus, identifier_key
from .passwords import PasswordService, check_password_policy


class AccountError(ValueError):
    """A user cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True)
class Lookup:
    """The result of resolving what someone typed into the login field."""

    user: User | None
    ambiguous_email: bool = False


def new_access_number() -> str:
    """Ten random digits, not starting with 0 (about 33 bits; not a secret)."""
    return str(secrets.randbelow(9 * 10**9) + 10**9)


def normalise_identifier(raw: str) -> str:
    return " ".join(raw.split())


def find_user(identifier: str) -> Lookup:
    """Access number, user name or e-mail, in that order.

    An e-mail address shared by several accounts cannot identify one of them;
    the caller tells the person to use the access number instead.
    """
    ident = normalise_identifier(identifier)
    if not ident:
        return Lookup(user=None)
    digits = ident.replace(" ", "")
    if digits.isdigit():
        user = db.session.scalar(select(User).where(User.access_number == digits))
        if user is not None:
            return Lookup(user=user)
    if "@" in ident:
        users = db.session.scalars(
            select(User).where(User.email_key == identifier_key(ident)).limit(2)
        ).all()
        if len(users) > 1:
            return Lookup(user=None, ambiguous_email=True)
        return Lookup(user=users[0] if users else None)
    user = db.session.scalar(select(User).where(User.username_key == identifier_key(ident)))
    return Lookup(user=user)


def remember_language(user: User) -> None:
    """Keep the language the person's current request states as the user's
    ``locale``: the messages sent to them later (text messages, e-mails, also
    those an administrator or a background task causes) are in that language.
    Called where the person acts (sign-in, enrolment, restoration, their
    device's API calls); a request that states no language changes nothing."""
    language = i18n.stated_language()
    if language is not None and user.locale != language:
        user.locale = language


def accounts_with_email(email: str) -> int:
    """How many accounts have this e-mail address (compared as at sign-in)."""
    return int(
        db.session.scalar(
            select(func.count(User.id)).where(User.email_key == identifier_key(email))
        )
        or 0
    )


def create_user(
    passwords: PasswordService,
    *,
    password: str,
    email: str | None = None,
    username: str | None = None,
    phone_number: str | None = None,
    given_name: str | None = None,
    family_name: str | None = None,
    access_number: str | None = None,
) -> User:
    problem = check_password_policy(password)
    if problem:
        raise AccountError(f"password must have {problem}")
    if username is not None:
        if not username or username.isdigit() or "@" in username or " " in username:
            raise AccountError("user name must not be empty, all digits, or contain @ or spaces")
        if _username_taken(username):
            raise AccountError(f"user name {username!r} is taken")
    if email is not None and ("@" not in email or len(email) > 254):
        raise AccountError("e-mail address is not valid")
    if access_number is None:
        access_number = new_access_number()
        while db.session.scalar(select(User.id).where(User.access_number == access_number)):
            access_number = new_access_number()
    elif db.session.scalar(select(User.id).where(User.access_number == access_number)):
        raise AccountError(f"access number {access_number} is taken")
    user = User(
        # OIDC Core §2: never reassigned; and never a client's id either
        # (idp.subjects), checked in this transaction.
        sub=subjects.new_identifier(),
        access_number=access_number,
        username=username,
        email=email,
        phone_number=phone_number,
        given_name=given_name,
        family_name=family_name,
        password_hash=passwords.hash(password),
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        # Another request took the user name (in any case) between the check
        # above and this insert: the database's unique index on its key.
        db.session.rollback()
        if username is not None and _username_taken(username):
            raise AccountError(f"user name {username!r} is taken") from None
        raise
    return user


def _username_taken(username: str) -> bool:
    key = identifier_key(username)
    return db.session.scalar(select(User.id).where(User.username_key == key)) is not None


def unlock_user(user: User) -> None:
    user.status = UserStatus.ACTIVE
    db.session.flush()
