"""What restoration keeps durably: per user, the digest of restoration code 1
and the state of the "Back up your identity" prompt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import UTCDateTime, db, utcnow


class RestorationSetup(db.Model):  # type: ignore[name-defined]
    """One row per user, made the first time restoration is touched (activated,
    or the prompt dismissed). Restoration is active while ``code_digest`` is set."""

    __tablename__ = "restoration_setups"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # Keyed SHA-256 digest (idp.tokens) of restoration code 1: 80 random bits,
    # so a fast keyed digest is right, not a password hash. None: not active.
    code_digest: Mapped[str | None] = mapped_column(String(64))
    # The device the current code 1 was shown on. If it is removed, the code
    # may be in the wrong hands and is void (service.on_device_revoked).
    code_device_id: Mapped[str | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL")
    )
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Last time code 1 was replaced (regenerated, or rotated by a restoration).
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the restoration address was confirmed with a code (the account's
    # e-mail address, then marked verified).
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "Not now" on the "Back up your identity" prompt: never asked again.
    prompt_dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def is_active(self) -> bool:
        return self.code_digest is not None
