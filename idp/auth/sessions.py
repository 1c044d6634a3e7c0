"""Browser login sessions.

The Flask cookie (signed, HttpOnly, SameSite=Lax) carries a random secret; the
``login_sessions`` row holds only its digest plus the public ``sid``. Signing
in clears the cookie session and issues a new secret (rotation against session
fixation); signing out ends the row, so an old copy of the cookie is useless.

Every way a session ends goes through here (signing out, another user signing
in on the same browser, ``end_user_sessions`` for a locked account or a forced
password reset, ``end_sessions`` for the user's "end this session", an
administrator's, or a deleted device's or passkey's "sign out everywhere it
confirmed"), and once the transaction that ended them commits,
``sessions_ended`` is sent with their sids: idp.oidc.backchannel then tells
the clients they signed in to (OpenID Connect Back-Channel Logout 1.0).

``end_sessions`` also revokes what the sessions issued: inside the same
transaction it sends ``sessions_revoking``, and idp.oidc.tokens revokes the
refresh tokens (their token families) issued from them. Signing out alone does
not: refresh tokens stand for offline access (OIDC Core §11), which
Back-Channel Logout §2.7 says normally outlives the session; a session the
user does not recognise, or one a lost device confirmed, is another matter.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from blinker import Namespace
from flask import current_app, g, has_app_context, request, session
from sqlalchemy import ColumnElement, and_, event, func, select, update
from sqlalchemy.orm import Session

from .. import audit
from ..accounts.models import User
from ..accounts.service import remember_language
from ..extensions import db, insert_ignore, utcnow
from ..state import idp
from ..tokens import new_token
from .models import LoginSession, SessionClient

COOKIE_KEY = "login"
# Seconds: "last active" is written at most this often per session, so a
# page view costs no write (the list shows it to the minute).
ACTIVITY_INTERVAL = 60
# Session.info key: sessions this transaction ended (sid -> reason), announced
# when it commits and forgotten when it rolls back.
_ENDED = "idp.ended_login_sessions"

_signals = Namespace()
# Sent (sender: the app) after the transaction that ended login sessions has
# committed, with ``sessions``: {sid: reason}. Never for a session that a
# sign-in of the same user replaced: its clients move to the new session.
sessions_ended = _signals.signal("login-sessions-ended")
# Sent (sender: the app) by ``end_sessions`` inside the transaction that ends
# the sessions, before it commits, with ``sids`` (the sessions ended) and
# ``reason``: receivers revoke what was issued from them (idp.oidc.tokens:
# their refresh tokens) and never commit; if one fails, nothing has ended.
sessions_revoking = _signals.signal("login-sessions-revoking")


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
            _record_activity(row)
    g.login_session = found
    return found


def _record_activity(row: LoginSession) -> None:
    """ "Last active": one conditional UPDATE when the stored time is older
    than ``ACTIVITY_INTERVAL``, none otherwise (part of the request's unit of
    work; two requests at once write it once)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=ACTIVITY_INTERVAL)
    if row.last_active_at is not None and row.last_active_at > cutoff:
        return
    db.session.execute(
        update(LoginSession)
        .where(
            LoginSession.id == row.id,
            (LoginSession.last_active_at.is_(None)) | (LoginSession.last_active_at <= cutoff),
        )
        .values(last_active_at=now)
        .execution_options(synchronize_session=False)
    )
    row.last_active_at = now


def start_login_session(
    user: User,
    *,
    amr: list[str],
    acr: str,
    auth_time: datetime | None = None,
    device_id: str | None = None,
    passkey_id: str | None = None,
) -> LoginSession:
    """Sign the browser in, replacing whatever session it had. ``device_id``
    or ``passkey_id``: what confirmed the sign-in (a device's approval, a
    passkey), remembered so that deleting it can end this session."""
    previous = current_login_session()
    keep = {k: session[k] for k in ("lang", "txs") if k in session}
    session.clear()  # also drops the CSRF token: a new one is made on demand
    session.update(keep)
    remember_language(user)  # a passkey sign-in too
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
        last_active_at=now,
        device_id=device_id,
        passkey_id=passkey_id,
    )
    db.session.add(row)
    if previous is not None:
        ended = _end_sessions(LoginSession.id == previous.id, reason="replaced", now=now)
        if ended and previous.user_id == user.id:
            # The same person, signed in again (a step-up, prompt=login): the
            # clients signed in under the old sid stay signed in, and are told
            # (with the sid they know) when the new session ends.
            db.session.flush()
            db.session.execute(
                update(SessionClient)
                .where(SessionClient.session_id == previous.id)
                .values(session_id=row.id)
            )
            _pending(db.session()).pop(previous.id, None)
    session[COOKIE_KEY] = secret
    session.permanent = True
    g.login_session = row
    return row


def end_login_session(*, reason: str) -> None:
    row = current_login_session()
    if row is not None and _end_sessions(LoginSession.id == row.id, reason=reason):
        audit.record("logout", user_id=row.user_id, reason=reason, sid=row.id)
    keep = {k: session[k] for k in ("lang",) if k in session}
    session.clear()
    session.update(keep)
    g.login_session = None


def end_user_sessions(user_id: int, *, reason: str) -> list[str]:
    """End every open login session of a user (an account locked, a password
    reset forced); their sids. Flushes; the caller commits."""
    return _end_sessions(LoginSession.user_id == user_id, reason=reason)


def open_sessions(user_id: int) -> list[LoginSession]:
    """The user's login sessions that have not ended or expired, the most
    recently active first."""
    return list(
        db.session.scalars(
            select(LoginSession)
            .where(
                LoginSession.user_id == user_id,
                LoginSession.ended_at.is_(None),
                LoginSession.expires_at > utcnow(),
            )
            .order_by(
                func.coalesce(LoginSession.last_active_at, LoginSession.created_at).desc(),
                LoginSession.id,
            )
        )
    )


def end_sessions(
    user_id: int,
    *,
    actor: str,
    reason: str,
    sids: Collection[str] | None = None,
    except_sid: str | None = None,
    device_id: str | None = None,
    passkey_id: str | None = None,
) -> list[str]:
    """End open login sessions of one user and revoke what they issued, in
    the caller's transaction; the sids ended (none: nothing matched, or a
    concurrent request ended them first).

    Which: those in ``sids`` (None: all), except ``except_sid`` (the browser
    asking: "end all others"), and only those ``device_id`` or ``passkey_id``
    confirmed when given. ``actor`` names who asked in the audit log, as
    elsewhere (``user:ID``, ``device:ID``, ``admin:ID``, ``cli``), and
    ``reason`` why (``user``, ``device_deleted``, ``passkey_deleted``,
    ``admin``). Inside the transaction ``sessions_revoking`` revokes their
    refresh tokens; once it commits, ``sessions_ended`` tells their clients.
    """
    conditions: list[ColumnElement[bool]] = [LoginSession.user_id == user_id]
    if sids is not None:
        conditions.append(LoginSession.id.in_(list(sids)))
    if except_sid is not None:
        conditions.append(LoginSession.id != except_sid)
    if device_id is not None:
        conditions.append(LoginSession.device_id == device_id)
    if passkey_id is not None:
        conditions.append(LoginSession.passkey_id == passkey_id)
    ended = _end_sessions(and_(*conditions), reason=reason)
    if not ended:
        return ended
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    sessions_revoking.send(app, sids=list(ended), reason=reason)
    for sid in ended:
        audit.record("session_ended", user_id=user_id, actor=actor, reason=reason, sid=sid)
    return ended


def remember_client(login: LoginSession, client_id: str) -> None:
    """Back-Channel Logout §2.3: the OP remembers the RPs a session signed in
    to. Called when an authorization code is issued; part of the caller's
    transaction. Concurrent authorizations of one client record it once."""
    insert_ignore(
        SessionClient,
        {"session_id": login.id, "client_id": client_id, "sid": login.id},
        key=["session_id", "client_id", "sid"],
    )


def _end_sessions(
    condition: ColumnElement[bool], *, reason: str, now: datetime | None = None
) -> list[str]:
    """End the open sessions matching ``condition``; the sids of those this
    call ended (one conditional UPDATE: of two requests ending the same
    session, one does, and its clients are told once)."""
    ended = list(
        db.session.scalars(
            update(LoginSession)
            .where(condition, LoginSession.ended_at.is_(None))
            .values(ended_at=now or utcnow())
            .returning(LoginSession.id)
        )
    )
    pending = _pending(db.session())
    for sid in ended:
        pending[sid] = reason
    return ended


def _pending(sql_session: Session) -> dict[str, str]:
    return sql_session.info.setdefault(_ENDED, {})  # type: ignore[no-any-return]


@event.listens_for(db.session, "after_commit")
def _announce_ended_sessions(sql_session: Session) -> None:
    if sql_session.in_nested_transaction():
        return  # a SAVEPOINT: the outer transaction may still roll back
    ended = sql_session.info.pop(_ENDED, None)
    if ended and has_app_context():
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        sessions_ended.send(app, sessions=dict(ended))


@event.listens_for(db.session, "after_rollback")
def _forget_ended_sessions(sql_session: Session) -> None:
    if not sql_session.in_nested_transaction():
        sql_session.info.pop(_ENDED, None)
