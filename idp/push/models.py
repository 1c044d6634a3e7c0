"""The VAPID key pair, kept in SQL so every instance signs with the same key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import UTCDateTime, db, utcnow


class VapidKey(db.Model):  # type: ignore[name-defined]
    """RFC 8292 application server key. The oldest row is the one in use."""

    __tablename__ = "vapid_keys"

    # Assigned by idp.push.keys, not by the database: the instances that race
    # to create the first key all claim id 1, and only one insert succeeds.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    # base64url (no padding) of the uncompressed P-256 point: the
    # applicationServerKey browsers subscribe with (RFC 8292 §3.2).
    public_key: Mapped[str] = mapped_column(String(100), unique=True)
    # PKCS#8 DER, AES-256-GCM under derive_key(master, "vapid-keys"):
    # 12-byte nonce || ciphertext, the public key as associated data.
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
