"""The user's login sessions, described for people and APIs, and ending
them on the word of the user (a browser, a device) or an administrator.

Ending goes through ``idp.auth.sessions.end_sessions``, the same path as
every other way a session ends: the refresh tokens issued from it are
revoked in the same transaction, and once it commits the clients it signed in
to get a Logout Token (OpenID Connect Back-Channel Logout 1.0).

Ending a session needs no fresh confirmation (as signing out needs none): it
only takes access away, and the person who ends a session they do not
recognise may have nothing else to confirm with.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..auth.models import LoginSession, SessionClient
from ..auth.sessions import end_sessions, open_sessions
from ..clientinfo import approximate_place, describe_user_agent
from ..devices.models import Device
from ..errors import IdpError
from ..extensions import db
from ..oidc.models import Client
from ..passkeys.models import Passkey

ConfirmationMethod = Literal["password", "device", "passkey"]
# Audit reasons of ended sessions (idp.auth.sessions.end_sessions).
REASON_USER = "user"
REASON_ADMIN = "admin"


class SessionNotFound(IdpError):
    # Also another user's session: sids are not confirmed to strangers.
    error = "session_not_found"
    status = 404
    message = _l("There is no such session on your account. It may have ended already.")


@dataclass(frozen=True)
class SessionApp:
    client_id: str
    name: str


@dataclass(frozen=True)
class Confirmation:
    """How a sign-in was confirmed: the password alone, a device's approval
    or a passkey; ``id`` and ``name`` of that device or passkey (None when it
    was deleted since)."""

    method: ConfirmationMethod
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class SessionSummary:
    sid: str
    browser: str | None  # "Chrome on Linux", in the request's language
    user_agent: str | None
    ip: str | None
    place: str | None  # "Berlin, Germany" where a GeoIP database is configured
    started_at: datetime
    last_active_at: datetime
    confirmed_by: Confirmation
    apps: tuple[SessionApp, ...]
    current: bool  # the browser asking


def sessions_of(user_id: int, *, current_sid: str | None = None) -> list[SessionSummary]:
    """The user's open login sessions, the most recently active first."""
    rows = open_sessions(user_id)
    apps = _apps_of([row.id for row in rows])
    devices = _names(Device, {row.device_id for row in rows if row.device_id})
    passkeys = _names(Passkey, {row.passkey_id for row in rows if row.passkey_id})
    return [
        SessionSummary(
            sid=row.id,
            browser=describe_user_agent(row.user_agent),
            user_agent=row.user_agent,
            ip=row.ip,
            place=approximate_place(row.ip),
            started_at=row.created_at,
            last_active_at=row.last_active_at or row.created_at,
            confirmed_by=_confirmation(row, devices, passkeys),
            apps=tuple(apps.get(row.id, ())),
            current=row.id == current_sid,
        )
        for row in rows
    ]


def end_session(user_id: int, sid: str, *, actor: str, reason: str = REASON_USER) -> None:
    """End one of the user's open sessions (``SessionNotFound`` otherwise,
    also when a concurrent request ended it first)."""
    if (
        not sid
        or len(sid) > 64
        or not end_sessions(user_id, sids=[sid], actor=actor, reason=reason)
    ):
        raise SessionNotFound()


def end_all_sessions(
    user_id: int, *, actor: str, except_sid: str | None = None, reason: str = REASON_USER
) -> int:
    """End every open session of the user but ``except_sid`` (the browser
    asking); how many ended."""
    return len(end_sessions(user_id, except_sid=except_sid, actor=actor, reason=reason))


def describe(summary: SessionSummary) -> dict[str, Any]:
    """A session as the device API and the admin API show it."""
    return {
        "sid": summary.sid,
        "browser": summary.browser,
        "user_agent": summary.user_agent,
        "ip": summary.ip,
        "place": summary.place,
        "started_at": _iso(summary.started_at),
        "last_active_at": _iso(summary.last_active_at),
        "confirmed_by": {
            "method": summary.confirmed_by.method,
            "id": summary.confirmed_by.id,
            "name": summary.confirmed_by.name,
        },
        "apps": [{"client_id": a.client_id, "name": a.name} for a in summary.apps],
    }


def _confirmation(
    row: LoginSession, devices: dict[str, str], passkeys: dict[str, str]
) -> Confirmation:
    if row.device_id:
        return Confirmation("device", row.device_id, devices.get(row.device_id))
    if row.passkey_id:
        return Confirmation("passkey", row.passkey_id, passkeys.get(row.passkey_id))
    if "mfa" in row.amr:
        # A device or passkey deleted since (its id went with it), or a
        # session from before sessions remembered what confirmed them.
        return Confirmation("device" if "pwd" in row.amr and "user" in row.amr else "passkey")
    return Confirmation("password")


def _apps_of(sids: list[str]) -> dict[str, list[SessionApp]]:
    found: dict[str, list[SessionApp]] = defaultdict(list)
    if not sids:
        return found
    rows = db.session.execute(
        select(SessionClient.session_id, SessionClient.client_id, Client.name)
        .outerjoin(Client, Client.client_id == SessionClient.client_id)
        .where(SessionClient.session_id.in_(sids))
        .order_by(SessionClient.id)
    )
    for sid, client_id, name in rows:
        if all(app.client_id != client_id for app in found[sid]):
            found[sid].append(SessionApp(client_id=client_id, name=name or client_id))
    return found


def _names(model: type[Device] | type[Passkey], ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    return dict(db.session.execute(select(model.id, model.name).where(model.id.in_(ids))).all())


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
