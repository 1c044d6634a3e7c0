from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..extensions import UTCDateTime, db, utcnow


class LoginSession(db.Model):  # type: ignore[name-defined]
    """A signed-in browser. ``id`` is the public ``sid`` (OIDC Front/Back-Channel
    Logout); the cookie carries a separate secret stored here only as a digest."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime())
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    acr: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Indexed for the purge (idp.housekeeping).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    # The last request made with it, written at most once a minute
    # (``sessions.ACTIVITY_INTERVAL``): shown as "last active".
    last_active_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What confirmed the sign-in beside (or instead of) the password: the
    # device whose approval it was, or the passkey. Deleting that device (or
    # passkey) can end every session it confirmed (idp.auth.sessions).
    device_id: Mapped[str | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL"), index=True
    )
    passkey_id: Mapped[str | None] = mapped_column(
        ForeignKey("passkeys.id", ondelete="SET NULL"), index=True
    )

    user: Mapped[User] = relationship(lazy="joined")


class SessionClient(db.Model):  # type: ignore[name-defined]
    """A client a login session signed in to: an authorization code was issued
    to it for this session, with ``sid`` in its ID token (OpenID Connect
    Back-Channel Logout 1.0 §2.3, "Remembering Logged-In RPs").

    When the session ends, each of these clients with a
    ``backchannel_logout_uri`` gets a Logout Token for ``sid``
    (idp.oidc.backchannel). A session replaced by a new one of the same user
    (a step-up, ``prompt=login``) hands its rows to the new session, and
    ``sid`` stays the one the client was told. Kept in SQL beside the session
    row it belongs to: it ends in the same transaction as the session, every
    instance sees it, and it lives exactly as long as that row."""

    __tablename__ = "login_session_clients"
    __table_args__ = (UniqueConstraint("session_id", "client_id", "sid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("login_sessions.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(128))
    sid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
