"""Browser login sessions.

The Flask cookie (signed, HttpOnly, SameSite=Lax) carries a random secret; the
``login_sessions`` row holds only its digest plus the public ``sid``. Signing
in clears the cookie session and issues a new secret (rotation against session
fixation); signing out ends the row, so an old copy of the cookie is useless.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import g, request, session
from sqlalchemy import select

from .. import audit, idp
from ..accounts.models import User
from ..extensions import db, utcnow
from ..tokens import new_token
from .models import LoginSession

COOKIE_KEY = "login"


def current_login_session() -> LoginSession | None:
    if "login_session" in g:
        return g.login_session  # type: ignore[no-any-return]
    found: LoginSession | None = None
    secret = session.get(COOKIE_KEY)
    if isinstance(secret, str):
        digest = idp().digester.digest(secret, purpose="session")
        row = db.session.scalar(select(LoginSession).where(LoginSession.secret_digest == digest))
        if (
            row is not None
            and row.ended_at is None
            and row.expires_at > utcnow()
            and row.user.is_active
        ):
            found = row
    g.login_session = found
    return found


def start_login_session(
    user: User, *, amr: list[str], acr: str, auth_time: datetime | None = None
) -> LoginSession:
    """Sign the browser in, replacing whatever session it had."""
    previous = current_login_session()
    if previous is not None:
        previous.ended_at = utcnow()
    keep = {k: session[k] for k in ("lang", "txs") if k in session}
    session.clear()  # also drops the CSRF token: a new one is made on demand
    session.update(keep)
    secret = new_token(32)
    now = utcnow()
    row = LoginSession(
        id=new_token(16),
        secret_digest=idp().digester.digest(secret, purpose="session"),
        user_id=user.id,
        auth_time=auth_time or now,
        amr=amr,
        acr=acr,
        expires_at=now + timedelta(seconds=idp().settings.session_lifetime),
        ip=request.remote_addr,
        user_agent=(request.user_agent.string or "")[:256],
    )
    db.session.add(row)
    db.session.commit()
    session[COOKIE_KEY] = secret
    session.permanent = True
    g.login_session = row
    return row


def end_login_session(*, reason: str) -> None:
    row = current_login_session()
    if row is not None:
        row.ended_at = utcnow()
        audit.record("logout", user_id=row.user_id, commit=False, reason=reason, sid=row.id)
        db.session.commit()
    keep = {k: session[k] for k in ("lang",) if k in session}
    session.clear()
    session.update(keep)
    g.login_session = None
