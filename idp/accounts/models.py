from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, validates

from ..extensions import UTCDateTime, db, utcnow


def identifier_key(identifier: str) -> str:
    """What makes two user names, or two e-mail addresses, the same at sign-in.

    Lower case, as Python folds it (the same on every database; SQL's
    ``lower()`` folds only ASCII on SQLite). Not ``casefold()``: it makes
    "straße@" and "strasse@" one address, and they are two mailboxes.
    """
    return identifier.lower()


class UserStatus:
    ACTIVE = "active"
    LOCKED = "locked"


class User(db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # OIDC Core §2: locally unique, never reassigned, not the access number.
    sub: Mapped[str] = mapped_column(String(64), unique=True)
    access_number: Mapped[str] = mapped_column(String(16), unique=True)
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    # ``identifier_key`` of the user name (set with it): unique, so "Alice"
    # and "alice" are never two accounts, and the index a sign-in looks the
    # name up with (lower() at most doubles a string's length: "İ").
    username_key: Mapped[str | None] = mapped_column(String(128), unique=True, index=True)
    # Not unique: several accounts may share one address (login then needs
    # the access number).
    email: Mapped[str | None] = mapped_column(String(254))
    # ``identifier_key`` of the address (set with it): what a sign-in and the
    # count of accounts sharing an address look up.
    email_key: Mapped[str | None] = mapped_column(String(508), index=True)
    email_verified: Mapped[bool] = mapped_column(default=False)
    phone_number: Mapped[str | None] = mapped_column(String(32))
    phone_number_verified: Mapped[bool] = mapped_column(default=False)
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str | None] = mapped_column(String(10))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=UserStatus.ACTIVE)
    # Administrators may use /admin (after an MFA login) and get admin tokens.
    is_admin: Mapped[bool] = mapped_column(default=False)
    # Set by an administrator: the next password login must choose a new one.
    password_reset_required: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @validates("username", "email")
    def _keep_identifier_key(self, field: str, value: str | None) -> str | None:
        setattr(self, f"{field}_key", None if value is None else identifier_key(value))
        return value

    @property
    def is_active(self) -> bool:
        return self.status == UserStatus.ACTIVE

    @property
    def name(self) -> str | None:
        parts = [p for p in (self.given_name, self.family_name) if p]
        return " ".join(parts) or None
