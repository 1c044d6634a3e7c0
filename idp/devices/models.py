"""Devices: a user's phone, tablet, browser or CLI holding a WebAuthn credential."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from ..accounts.models import User
from ..extensions import UTCDateTime, db, utcnow

DeviceKind = Literal["iphone", "ipad", "android", "browser", "cli"]
DEVICE_KINDS: tuple[str, ...] = get_args(DeviceKind)
MAX_DEVICE_NAME = 100


def device_name(value: str) -> str:
    """A device's name: 1 to 100 characters as sent, white space collapsed, no
    control characters; ValueError says what is wrong."""
    collapsed = " ".join(value.split())
    if not collapsed or len(value) > MAX_DEVICE_NAME:
        raise ValueError(f"1 to {MAX_DEVICE_NAME} characters")
    if not collapsed.isprintable():
        raise ValueError("no control characters")
    return collapsed


def name_key(name: str) -> str:
    """What makes two device names the same name (the list, the notices and
    "delete" could not tell such devices apart)."""
    return name.casefold()


# Partial unique index condition: only active devices' names must differ.
ACTIVE = text("revoked_at IS NULL")


class EnrolledVia:
    PASSWORD_SMS = "password_sms"
    PASSWORD_EMAIL = "password_email"
    BINDING_CODE = "binding_code"
    RESTORATION = "restoration"


class Device(db.Model):  # type: ignore[name-defined]
    __tablename__ = "devices"
    # Two active devices of one user never share a name, compared as the
    # service compares them (``name_key``): held by the database, so two
    # enrolments or renames at the same moment cannot both store one name.
    # A deleted device's name is free again.
    __table_args__ = (
        Index(
            "uq_devices_user_id_name_key_active",
            "user_id",
            "name_key",
            unique=True,
            sqlite_where=ACTIVE,
            postgresql_where=ACTIVE,
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # The name case-folded (set with the name): "iPhone" and "IPHONE" are one.
    name_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))
    enrolled_via: Mapped[str] = mapped_column(String(32))
    # The WebAuthn credential (WebAuthn §6.1 credential record).
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(default=0)
    aaguid: Mapped[str | None] = mapped_column(String(36))
    # Attestation statement format of the registration ("none": unverified).
    attestation_fmt: Mapped[str] = mapped_column(String(32), default="none")
    backup_eligible: Mapped[bool] = mapped_column(default=False)
    backed_up: Mapped[bool] = mapped_column(default=False)
    transports: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Keyed digest of the device API token (idp.tokens); the token is shown once.
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    push_subscription: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Restored while a veto window is configured (idp.restore): the device
    # exists but cannot be used until then, and the user's other devices may
    # refuse it meanwhile. None: usable from the start.
    pending_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")

    @validates("name")
    def _keep_name_key(self, _key: str, name: str) -> str:
        self.name_key = name_key(name)
        return name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def is_pending(self, now: datetime) -> bool:
        return self.pending_until is not None and now < self.pending_until

    @property
    def amr(self) -> str:
        """RFC 8176 hwk (hardware-secured key) only where an attestation showed
        the key's home; a device's own word (its ``kind``) does not: swk."""
        attested = self.attestation_fmt not in ("", "none")
        return "hwk" if attested and self.kind != "cli" else "swk"
