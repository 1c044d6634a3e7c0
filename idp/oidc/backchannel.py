"""OpenID Connect Back-Channel Logout 1.0 (the OP's side).

When a login session ends (idp.auth.sessions sends ``sessions_ended`` once
the transaction that ended it has committed), every client the session signed
in to (``SessionClient``, recorded when a code was issued) that registered a
``backchannel_logout_uri`` gets a Logout Token in a direct POST.

Off the request thread: ``on_sessions_ended`` (connected in create_app) hands
the sids to a small thread pool, which finds the clients and posts to each
separately, with a short timeout and without following redirects, so a slow
or dead client delays nobody: not the user's sign-out, not the other clients.
Every attempt is an audit event ``backchannel_logout`` with its outcome; the
token itself is never logged. There is no retry; a client that was not
reached shows in the audit log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask, current_app
from joserfc import jwt
from sqlalchemy import select

from .. import audit
from ..accounts.models import User
from ..auth.models import LoginSession, SessionClient
from ..extensions import after_commit, commit, db
from ..state import idp
from ..tokens import new_token
from .claims import id_token_alg
from .clients import get_client, is_loopback
from .models import Client

log = logging.getLogger(__name__)

EXECUTOR_KEY = "idp.backchannel_executor"
# §2.4: the member of the "events" claim that makes a JWT a Logout Token.
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# §2.4 / §4.1: explicitly typed, so that a Logout Token is never taken for an
# ID token, nor an ID token for a Logout Token.
LOGOUT_TOKEN_TYPE = "logout+jwt"
# Seconds: the token is posted at once and never stored by us.
LOGOUT_TOKEN_LIFETIME = 120
USER_AGENT = "Freigabe back-channel logout"


@dataclass(frozen=True)
class LogoutNotice:
    """One client to tell that one session ended."""

    client_id: str
    uri: str
    sid: str  # the sid the client was told in its ID token
    sub: str
    user_id: int
    reason: str


@dataclass(frozen=True)
class Delivery:
    """How a POST went: ``delivered`` (200 or 204, §2.8), ``refused`` (the
    client answered 400: it rejected the token), ``failed`` (another status,
    redirects included: never followed), ``timeout``, ``unreachable``,
    ``error``, or ``blocked`` (a loopback URI on a deployment that is not
    local: the server does not post to its own host)."""

    outcome: str
    status: int | None = None


def init_app(app: Flask) -> None:
    app.extensions[EXECUTOR_KEY] = ThreadPoolExecutor(
        max_workers=4, thread_name_prefix="backchannel-logout"
    )


def on_sessions_ended(sender: Flask, *, sessions: Mapping[str, str], **extra: Any) -> None:
    """Receiver of ``idp.auth.sessions.sessions_ended`` (connected in
    create_app): ``sessions`` maps each ended sid to why it ended."""
    executor: ThreadPoolExecutor | None = sender.extensions.get(EXECUTOR_KEY)
    if executor is None or not sessions:
        return
    try:
        executor.submit(_notify, sender, dict(sessions))
    except RuntimeError:
        # The app is shutting down; the sessions have ended all the same.
        log.warning("back-channel logout not sent for %d session(s): shutting down", len(sessions))


def notices_for(sessions: Mapping[str, str], *, client_id: str | None = None) -> list[LogoutNotice]:
    """The clients to tell that these sessions ended: those the sessions
    signed in to that registered a back-channel logout URI (disabled ones
    too: being told of a logout only takes something away); with
    ``client_id``, that client only (its access was removed, the sessions
    go on)."""
    only = [SessionClient.client_id == client_id] if client_id is not None else []
    rows = db.session.execute(
        select(
            SessionClient.client_id,
            SessionClient.sid,
            SessionClient.session_id,
            Client.backchannel_logout_uri,
            User.sub,
            User.id,
        )
        .join(LoginSession, LoginSession.id == SessionClient.session_id)
        .join(User, User.id == LoginSession.user_id)
        .join(Client, Client.client_id == SessionClient.client_id)
        .where(
            SessionClient.session_id.in_(list(sessions)),
            Client.backchannel_logout_uri.is_not(None),
            *only,
        )
        .order_by(SessionClient.id)
    )
    return [
        LogoutNotice(
            client_id=client_id,
            uri=uri or "",
            sid=sid,
            sub=sub,
            user_id=user_id,
            reason=sessions[session_id],
        )
        for client_id, sid, session_id, uri, sub, user_id in rows
    ]


def logout_token(client: Client, *, sub: str, sid: str, now: int | None = None) -> str:
    """§2.4: a JWT signed like the client's ID tokens (same keys, same
    algorithm), typed ``logout+jwt``. ``sid`` is always included, so a client
    that registered ``backchannel_logout_session_required`` has it too; and
    never a ``nonce`` (§2.4: a Logout Token MUST NOT contain one)."""
    settings = idp().settings
    key = idp().keyring.signing_key(id_token_alg(client))
    issued = int(time.time()) if now is None else now
    claims = {
        "iss": settings.issuer,
        "aud": client.client_id,
        "iat": issued,
        "exp": issued + LOGOUT_TOKEN_LIFETIME,
        "jti": new_token(16),
        "sub": sub,
        "sid": sid,
        "events": {LOGOUT_EVENT: {}},
    }
    header = {"alg": key.alg, "kid": key.kid, "typ": LOGOUT_TOKEN_TYPE}
    return jwt.encode(header, claims, key.key)


def deliver(notice: LogoutNotice) -> Delivery:
    """§2.5: POST ``logout_token`` form-encoded to the client's URI and read
    the answer (§2.8). Records the ``backchannel_logout`` audit event."""
    client = get_client(notice.client_id)
    if client is None:
        return Delivery("error")  # deleted since; nobody left to tell
    host = urlsplit(notice.uri).hostname or ""
    if is_loopback(host) and not idp().settings.is_local:
        delivery = Delivery("blocked")
    else:
        delivery = _post(notice, logout_token(client, sub=notice.sub, sid=notice.sid), host)
    audit.record(
        "backchannel_logout",
        user_id=notice.user_id,
        client_id=notice.client_id,
        outcome=delivery.outcome,
        status=delivery.status,
        sid=notice.sid,
        reason=notice.reason,
    )
    return delivery


def _post(notice: LogoutNotice, token: str, host: str) -> Delivery:
    timeout = idp().settings.backchannel_logout_timeout
    client = notice.client_id
    try:
        response = requests.post(
            notice.uri,
            data={"logout_token": token},
            headers={"User-Agent": USER_AGENT},
            timeout=timeout,
            # A redirect could aim the token anywhere: never followed.
            allow_redirects=False,
        )
    except requests.Timeout:
        log.warning("back-channel logout to %s at %s: no answer within %ss", client, host, timeout)
        return Delivery("timeout")
    except requests.ConnectionError as exc:
        log.warning("back-channel logout to %s at %s: %s", client, host, type(exc).__name__)
        return Delivery("unreachable")
    except requests.RequestException as exc:
        log.warning("back-channel logout to %s at %s: %s", client, host, type(exc).__name__)
        return Delivery("error")
    status = response.status_code
    response.close()
    if status in (200, 204):
        # §2.8: 200 OK; frameworks may turn an empty 200 into 204.
        log.info("back-channel logout to %s at %s: %s", client, host, status)
        return Delivery("delivered", status)
    log.warning("back-channel logout to %s at %s: answered %s", client, host, status)
    return Delivery("refused" if status == 400 else "failed", status)


def send_after_commit(notices: Sequence[LogoutNotice]) -> None:
    """Post these Logout Tokens once the unit of work has committed (never
    if it rolls back), off the request thread as for ended sessions: for a
    client signed out of sessions that go on (its access was removed), whose
    notices were found before its ``SessionClient`` rows went."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not notices or EXECUTOR_KEY not in app.extensions:
        return
    found = list(notices)
    after_commit(lambda: _submit(app, found))


def _notify(app: Flask, sessions: dict[str, str]) -> None:
    with app.app_context():
        try:
            found = notices_for(sessions)
        except Exception:
            log.exception("back-channel logout: the clients of ended sessions are unknown")
            return
        finally:
            db.session.remove()
    _submit(app, found)


def _submit(app: Flask, found: list[LogoutNotice]) -> None:
    executor: ThreadPoolExecutor = app.extensions[EXECUTOR_KEY]
    for notice in found:
        try:
            executor.submit(_deliver, app, notice)
        except RuntimeError:
            # The process is exiting (an ``idp`` command that locked a user,
            # say): no new threads now, so post from this one.
            _deliver(app, notice)


def _deliver(app: Flask, notice: LogoutNotice) -> None:
    with app.app_context():
        try:
            deliver(notice)
            commit()  # this delivery is a unit of work of its own
        except Exception:
            log.exception("back-channel logout to client %s failed", notice.client_id)
        finally:
            db.session.remove()
