"""The apps a user has granted access to (their consents), and taking that
access back.

The account page ("Your connected apps"), the admin pages and the admin API
list them and remove them through here. Removing an app's access is one step
in the caller's unit of work:

- the consent goes, so the next sign-in at the app asks again (the login
  policy's ``consent_missing``);
- every token family of the app for the user is revoked (``revoke_families``:
  their refresh tokens in SQL, their access tokens in Redis in one step), so
  neither a refresh, nor userinfo, nor introspection accepts them any more; a code
  issued before and redeemed after finds no consent (idp.oidc.grants);
- the app is signed out of the user's open login sessions: each session it
  signed in to gives up its ``SessionClient`` row, and the app gets a Logout
  Token for that ``sid`` once the unit of work has committed (the same
  delivery as for an ended session, idp.oidc.backchannel). The sessions
  themselves go on: the user stays signed in here and at the other apps.

"Last used" is the newest ``last_used_at`` of the app's token families for
the user: every token issued (a code redeemed, a refresh) writes it already
under the family's lock, so nothing more is written for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from .. import audit
from ..auth.models import LoginSession, SessionClient
from ..extensions import db, utcnow
from ..redirects import image_url
from ..state import idp
from . import backchannel
from .models import ADMIN_SCOPE, SUPPORTED_SCOPES, Client, Consent, RefreshToken, TokenFamily
from .tokens import revoke_families

# The reason on the back-channel logouts and in the audit log.
APP_REMOVED = "app_removed"


@dataclass(frozen=True)
class ConnectedApp:
    """One app with access to a user's account, as the pages show it."""

    client_id: str
    name: str
    # An image URL a page may show (https, or the issuer's own), else None:
    # the page shows ``initial`` instead.
    logo_url: str | None
    scopes: tuple[str, ...]
    granted_at: datetime
    last_used_at: datetime | None
    # It holds a live refresh token: it can reach the account while the user
    # is away (``offline_access``).
    offline: bool

    @property
    def initial(self) -> str:
        return (self.name.strip()[:1] or "?").upper()


@dataclass(frozen=True)
class RemovedAccess:
    """What removing an app's access ended."""

    client_id: str
    name: str
    # Token families revoked, and login sessions the app was signed out of.
    grants: int
    sessions: int


class NotConnected(Exception):
    """The user has not granted this app access (or no longer)."""


def connected_apps(user_id: int) -> list[ConnectedApp]:
    """The apps with a consent of ``user_id``, most recently used first."""
    now = utcnow()
    last_used = dict(
        db.session.execute(
            select(TokenFamily.client_id, func.max(TokenFamily.last_used_at))
            .where(TokenFamily.user_id == user_id)
            .group_by(TokenFamily.client_id)
        ).all()
    )
    offline = set(
        db.session.scalars(
            select(RefreshToken.client_id)
            .join(TokenFamily, TokenFamily.id == RefreshToken.family_id)
            .where(
                RefreshToken.user_id == user_id,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.consumed_at.is_(None),
                RefreshToken.expires_at > now,
                TokenFamily.revoked_at.is_(None),
            )
            .distinct()
        )
    )
    issuer = idp().settings.issuer
    rows = db.session.execute(
        select(Consent, Client)
        .join(Client, Client.client_id == Consent.client_id)
        .where(Consent.user_id == user_id)
    ).all()
    apps = [
        ConnectedApp(
            client_id=client.client_id,
            name=client.name,
            logo_url=image_url(client.logo_uri, issuer=issuer),
            scopes=_in_order(consent.scopes or ()),
            granted_at=consent.granted_at,
            last_used_at=last_used.get(client.client_id),
            offline=client.client_id in offline,
        )
        for consent, client in rows
    ]
    return sorted(apps, key=lambda a: a.last_used_at or a.granted_at, reverse=True)


def _in_order(scopes: Iterable[str]) -> tuple[str, ...]:
    """As the consent screen lists them: the supported scopes in their order,
    then any others."""
    order = {scope: i for i, scope in enumerate((*SUPPORTED_SCOPES, ADMIN_SCOPE))}
    return tuple(sorted(set(scopes), key=lambda s: (order.get(s, len(order)), s)))


def connected_app(user_id: int, client_id: str) -> ConnectedApp:
    """One of the user's connected apps, or ``NotConnected``."""
    for app in connected_apps(user_id):
        if app.client_id == client_id:
            return app
    raise NotConnected()


def remove_access(user_id: int, client_id: str, *, actor: str) -> RemovedAccess:
    """Take back the access the user gave ``client_id`` (see the module's
    text), on the word of ``actor`` (``user:ID``, ``admin:ID``, ...): one
    audit event ``app_access_removed``. ``NotConnected`` if there was no
    consent to remove (removed already, by another tab or an administrator):
    then nothing changes."""
    client = db.session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None:
        raise NotConnected()
    # One removal takes the consent (of two at once, the other finds none).
    removed = db.session.execute(
        delete(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
    )
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise NotConnected()
    families = list(
        db.session.scalars(
            select(TokenFamily.id).where(
                TokenFamily.user_id == user_id,
                TokenFamily.client_id == client_id,
                TokenFamily.revoked_at.is_(None),
            )
        )
    )
    revoke_families(families, reason=APP_REMOVED)
    open_sessions = list(
        db.session.scalars(
            select(LoginSession.id).where(
                LoginSession.user_id == user_id, LoginSession.ended_at.is_(None)
            )
        )
    )
    notices = backchannel.notices_for(
        dict.fromkeys(open_sessions, APP_REMOVED), client_id=client_id
    )
    signed_out = db.session.execute(
        delete(SessionClient).where(
            SessionClient.session_id.in_(open_sessions), SessionClient.client_id == client_id
        )
    )
    sessions = int(signed_out.rowcount or 0)  # type: ignore[attr-defined]
    audit.record(
        "app_access_removed",
        user_id=user_id,
        client_id=client_id,
        actor=actor,
        grants=len(families),
        sessions=sessions,
    )
    backchannel.send_after_commit(notices)
    return RemovedAccess(
        client_id=client_id, name=client.name, grants=len(families), sessions=sessions
    )
