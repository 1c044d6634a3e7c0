"""A passkey: a WebAuthn credential (WebAuthn §6.1 credential record) a user
signs in with, registered on the account page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from ..accounts.models import User
from ..extensions import UTCDateTime, db, utcnow


def name_key(name: str) -> str:
    """What makes two passkey names the same name."""
    return name.casefold()


class Passkey(db.Model):  # type: ignore[name-defined]
    __tablename__ = "passkeys"
    # Two passkeys of one user never share a name, compared as the account
    # page compares them (case-folded): held by the database, so two tabs
    # registering the same name at once cannot both store it.
    __table_args__ = (UniqueConstraint("user_id", "name_key", name="uq_passkeys_user_id_name_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # The name case-folded (set with the name): "Laptop" and "LAPTOP" are one.
    name_key: Mapped[str] = mapped_column(String(300))
    # Unique across passkeys; registration also refuses a device's credential
    # ID (WebAuthn §7.1 step 22). The unique constraint is the lookup index.
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE_Key
    sign_count: Mapped[int] = mapped_column(default=0)
    aaguid: Mapped[str | None] = mapped_column(String(36))
    # Attestation statement format of the registration ("none": unverified).
    attestation_fmt: Mapped[str] = mapped_column(String(32), default="none")
    # BE: may be synced to other devices (fixed at registration); BS: is synced
    # now (updated at every use). WebAuthn L3 §6.1.3.
    backup_eligible: Mapped[bool] = mapped_column(default=False)
    backed_up: Mapped[bool] = mapped_column(default=False)
    transports: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")

    @validates("name")
    def _keep_name_key(self, _key: str, name: str) -> str:
        self.name_key = name_key(name)
        return name

    @property
    def method(self) -> str:
        """The login method (idp.auth.amr) an assertion by this passkey is.

        RFC 8176 "hwk" only for a key that cannot leave its authenticator (BE
        not set) and whose attestation showed the authenticator; without an
        attestation the flags are the authenticator's own word: "swk" (the
        same rule as ``Device.amr``).
        """
        attested = self.attestation_fmt not in ("", "none")
        return "passkey_hwk" if attested and not self.backup_eligible else "passkey_swk"
