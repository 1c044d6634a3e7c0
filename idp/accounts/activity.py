"""A user's own recent security events, in words (the account page's
"Recent activity").

Read from the audit log (idp.audit), only the user's own rows and only the
kinds people recognise: sign-ins and by what, devices and passkeys added or
removed, restoration, password changes, fraud reports, apps given or denied
access, the account locked. Each becomes a sentence in the request's
language, with the app, where the request came from (the address, a place
where a GeoIP database is configured) and, for a sign-in, the browser (the
event's ``user_agent``; before sign-ins recorded it, from their login session
while it is kept), in words (idp.clientinfo). Nothing else of the event is
shown: its details may name other things (ids, digests) that are no business
of a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from ..audit import AuditEvent
from ..auth.models import LoginSession
from ..clientinfo import approximate_place, describe_user_agent
from ..devices.models import Device
from ..extensions import db
from ..oidc.models import Client
from ..passkeys.models import Passkey

# The events shown, in the order of the module's text.
SHOWN = (
    "login",
    "login_mfa",
    "passkey_login",
    "login_failed",
    "device_enrolled",
    "device_deleted",
    "restore_vetoed",
    "passkey_registered",
    "passkey_deleted",
    "restoration_activated",
    "restore_started",
    "restore_completed",
    "password_changed",
    "password_reset_forced",
    "approval_fraud_reported",
    "consent_granted",
    "app_access_removed",
    "user_locked",
    "user_unlocked",
)
# Events whose sentence names the app itself.
NAMING_THE_APP = frozenset({"consent_granted", "app_access_removed"})
RECENT = 20
PAGE = 50


@dataclass(frozen=True)
class Activity:
    """One event as the page shows it."""

    id: int
    at: datetime
    type: str
    text: str
    # The app it was about, by name; None for the account itself.
    app: str | None
    ip: str | None
    place: str | None
    browser: str | None
    # Done by an administrator (the admin pages, API or the idp command).
    by_administrator: bool


@dataclass(frozen=True)
class ActivityPage:
    items: list[Activity]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.items)
        return end if end < self.total else None


def recent_activity(user_id: int, *, offset: int = 0, limit: int = RECENT) -> ActivityPage:
    """The user's shown events, newest first."""
    query = select(AuditEvent).where(AuditEvent.user_id == user_id, AuditEvent.type.in_(SHOWN))
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    events = list(
        db.session.scalars(query.order_by(AuditEvent.id.desc()).offset(offset).limit(limit))
    )
    return ActivityPage(
        items=_describe(user_id, events), total=int(total), offset=offset, limit=limit
    )


def _describe(user_id: int, events: Sequence[AuditEvent]) -> list[Activity]:
    details = [e.detail or {} for e in events]
    # What the events name, looked up once and only among the user's own.
    device_ids = {str(d["device"]) for d in details if d.get("device")}
    devices = dict(
        db.session.execute(
            select(Device.id, Device.name).where(
                Device.id.in_(device_ids), Device.user_id == user_id
            )
        ).all()
    )
    passkey_ids = {str(d["passkey"]) for d in details if d.get("passkey")}
    passkeys = dict(
        db.session.execute(
            select(Passkey.id, Passkey.name).where(
                Passkey.id.in_(passkey_ids), Passkey.user_id == user_id
            )
        ).all()
    )
    sids = {str(d["sid"]) for d in details if d.get("sid") and not d.get("user_agent")}
    browsers = dict(
        db.session.execute(
            select(LoginSession.id, LoginSession.user_agent).where(
                LoginSession.id.in_(sids), LoginSession.user_id == user_id
            )
        ).all()
    )
    client_ids = {e.client_id for e in events if e.client_id}
    apps = dict(
        db.session.execute(
            select(Client.client_id, Client.name).where(Client.client_id.in_(client_ids))
        ).all()
    )
    found: list[Activity] = []
    for event, detail in zip(events, details, strict=True):
        device = devices.get(str(detail.get("device") or ""))
        app = apps.get(event.client_id) if event.client_id else None
        if event.type in NAMING_THE_APP:
            text = _sentence(event.type, detail, device=device, passkeys=passkeys, app=app)
            app = None  # named in the sentence
        else:
            text = _sentence(event.type, detail, device=device, passkeys=passkeys)
        found.append(
            Activity(
                id=event.id,
                at=event.at,
                type=event.type,
                text=text,
                app=app,
                ip=event.ip,
                place=approximate_place(event.ip),
                browser=describe_user_agent(
                    detail.get("user_agent") or browsers.get(str(detail.get("sid") or ""))
                ),
                by_administrator=_by_administrator(event.actor),
            )
        )
    return found


def _by_administrator(actor: str | None) -> bool:
    return bool(actor) and (str(actor).startswith(("admin:", "api:")) or actor == "cli")


def _sentence(
    kind: str,
    detail: dict[str, Any],
    *,
    device: str | None,
    passkeys: dict[str, str],
    app: str | None = None,
) -> str:
    return str(_words(kind, detail, device=device, passkeys=passkeys, app=app))


def _words(
    kind: str,
    detail: dict[str, Any],
    *,
    device: str | None,
    passkeys: dict[str, str],
    app: str | None,
) -> object:
    passkey = passkeys.get(str(detail.get("passkey") or ""))
    if kind == "login":
        return _("Signed in with your password")
    if kind == "login_mfa":
        if device:
            return _("Signed in with your password, confirmed on %(device)s", device=device)
        return _("Signed in with your password, confirmed on a device since removed")
    if kind == "passkey_login":
        if detail.get("step") == "mfa":
            if passkey:
                return _("Signed in with your password, confirmed with the passkey %(name)s",
                         name=passkey)  # fmt: skip
            return _("Signed in with your password, confirmed with a passkey")
        if passkey:
            return _("Signed in with the passkey %(name)s", name=passkey)
        return _("Signed in with a passkey")
    if kind == "login_failed":
        return _("A sign-in failed: the password was wrong")
    if kind == "device_enrolled":
        return _("Device %(name)s added", name=device or _("(since removed)"))
    if kind == "device_deleted":
        return _("Device %(name)s removed", name=device or _("(unknown)"))
    if kind == "restore_vetoed":
        return _("The restored device %(name)s was refused", name=device or _("(unknown)"))
    if kind == "passkey_registered":
        return _("Passkey %(name)s added", name=passkey or _("(since removed)"))
    if kind == "passkey_deleted":
        return _("A passkey was removed")
    if kind == "restoration_activated":
        return _("Restoration of your ID was set up")
    if kind == "restore_started":
        name = str(detail.get("device_name") or "")
        if name:
            return _("Restoring your ID on a new device (%(name)s) was started", name=name)
        return _("Restoring your ID on a new device was started")
    if kind == "restore_completed":
        return _("Your ID was restored on %(name)s", name=device or _("a new device"))
    if kind == "password_changed":
        return _("Password changed")
    if kind == "password_reset_forced":
        return _("A new password was required")
    if kind == "approval_fraud_reported":
        return _("A sign-in request was denied and reported as fraud")
    if kind == "consent_granted":
        if app:
            return _("%(app)s was given access to your account", app=app)
        return _("An app was given access to your account")
    if kind == "app_access_removed":
        if app:
            return _("The access of %(app)s was removed", app=app)
        return _("The access of an app was removed")
    if kind == "user_locked":
        return _("The account was locked")
    if kind == "user_unlocked":
        return _("The account was unlocked")
    return kind
