"""Administration: the operations the admin pages, the admin JSON API and the
``idp`` CLI share, so the three stay consistent.

Every change takes the acting ``Actor`` and records one audit event naming it
(``admin:USER_ID`` on the pages, ``api:CLIENT_ID`` for a token, ``cli`` for an
operator at the command line). Lookups that find nothing raise ``NotFound``.
Callers commit nothing themselves: each change commits with its audit event.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select, update

from .. import audit, idp
from ..accounts import service as accounts
from ..accounts.models import User
from ..audit import AuditEvent
from ..auth.models import LoginSession
from ..devices import service as devices
from ..devices.models import Device
from ..errors import IdpError
from ..extensions import db, utcnow
from ..oidc.models import SigningKey
from ..passkeys.models import Passkey
from ..restore.models import RestorationSetup

T = TypeVar("T")

DEFAULT_PAGE = 50
MAX_PAGE = 500
RECENT_EVENTS = 20


class AdminError(IdpError):
    status = 400
    error = "invalid_request"


class NotFound(AdminError):
    status = 404
    error = "not_found"
    message = _l("There is no such entry (any more).")


@dataclass(frozen=True)
class Actor:
    """Who acts: ``label`` goes into the audit log's ``actor``."""

    label: str
    user_id: int | None = None

    @classmethod
    def admin(cls, user: User) -> Actor:
        return cls(label=f"admin:{user.id}", user_id=user.id)

    @classmethod
    def token(cls, client_id: str) -> Actor:
        return cls(label=f"api:{client_id}")

    @classmethod
    def cli(cls) -> Actor:
        return cls(label="cli")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: ``items`` from ``offset`` on, ``total`` in all."""

    items: list[T]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.items)
        return end if end < self.total else None


def page_bounds(offset: Any, limit: Any) -> tuple[int, int]:
    """Offset and limit from untrusted input, clamped (bad values: the defaults)."""
    try:
        start = max(0, int(offset))
    except (TypeError, ValueError):
        start = 0
    try:
        size = min(MAX_PAGE, max(1, int(limit)))
    except (TypeError, ValueError):
        size = DEFAULT_PAGE
    return start, size


def _page(query: Select[T], offset: int, limit: int) -> Page[T]:
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = list(db.session.scalars(query.offset(offset).limit(limit)))
    return Page(items=items, total=int(total or 0), offset=offset, limit=limit)


# --- users ---------------------------------------------------------------------------


def search_users(text: str | None, *, offset: int = 0, limit: int = DEFAULT_PAGE) -> Page[User]:
    """Users whose access number, username, e-mail or name contains ``text``."""
    query = select(User).order_by(User.id)
    text = (text or "").strip().lower()
    if text:
        pattern = f"%{_escape_like(text)}%"
        query = query.where(
            func.lower(User.email).like(pattern, escape="\\")
            | func.lower(User.username).like(pattern, escape="\\")
            | func.lower(User.given_name).like(pattern, escape="\\")
            | func.lower(User.family_name).like(pattern, escape="\\")
            | User.access_number.like(pattern, escape="\\")
        )
    return _page(query, offset, limit)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_user(sub: str) -> User:
    """A user by ``sub`` (the id the admin pages, API and CLI show)."""
    user: User | None = db.session.scalar(select(User).where(User.sub == sub)) if sub else None
    if user is None:
        raise NotFound()
    return user


@dataclass(frozen=True)
class UserOverview:
    user: User
    devices: list[Device]
    passkeys: list[Passkey]
    restoration_active: bool
    restoration_activated_at: datetime | None
    recent_events: list[AuditEvent] = field(default_factory=list)


def user_overview(user: User) -> UserOverview:
    setup = db.session.get(RestorationSetup, user.id)
    active = setup is not None and setup.is_active
    return UserOverview(
        user=user,
        devices=devices.active_devices(user.id),
        passkeys=list(
            db.session.scalars(
                select(Passkey).where(Passkey.user_id == user.id).order_by(Passkey.created_at)
            )
        ),
        restoration_active=active,
        restoration_activated_at=setup.activated_at if setup is not None and active else None,
        recent_events=audit_events(AuditQuery(user_id=user.id), limit=RECENT_EVENTS).items,
    )


def lock_user(actor: Actor, user: User) -> None:
    """No new logins; sessions and refresh tokens end at once."""
    accounts.lock_user(user)
    audit.record("user_locked", user_id=user.id, actor=actor.label, commit=False)
    db.session.commit()


def unlock_user(actor: Actor, user: User) -> None:
    accounts.unlock_user(user)
    audit.record("user_unlocked", user_id=user.id, actor=actor.label, commit=False)
    db.session.commit()


def force_password_reset(actor: Actor, user: User) -> None:
    """The next password login must choose a new password first; the user's
    login sessions end now, so nobody stays signed in on the old password."""
    user.password_reset_required = True
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    audit.record("password_reset_forced", user_id=user.id, actor=actor.label, commit=False)
    db.session.commit()


def set_admin(actor: Actor, user: User, *, admin: bool) -> None:
    if user.is_admin == admin:
        return
    user.is_admin = admin
    audit.record(
        "admin_granted" if admin else "admin_revoked",
        user_id=user.id,
        actor=actor.label,
        commit=False,
    )
    db.session.commit()


def remove_device(actor: Actor, user: User, device_id: str) -> int:
    """Revoke one of ``user``'s devices at once; how many they have left."""
    target = db.session.get(Device, device_id[:64]) if device_id else None
    if target is None or target.user_id != user.id or not target.is_active:
        raise NotFound()
    try:
        return devices.revoke_device(target, now=utcnow(), actor=actor.label)
    except devices.DeviceNotFound:
        raise NotFound() from None


# --- keys ----------------------------------------------------------------------------


def signing_keys() -> list[SigningKey]:
    """Every signing key, newest first: active, retiring (still published), retired."""
    idp().keyring.ensure_keys()
    return list(db.session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc())))


def rotate_signing_keys(actor: Actor, algs: Sequence[str]) -> list[SigningKey]:
    ring = idp().keyring
    ring.ensure_keys()
    rotated = []
    for alg in algs:
        key = ring.rotate(alg)
        audit.record("signing_key_rotated", actor=actor.label, alg=alg, kid=key.kid)
        rotated.append(key)
    return rotated


def retire_expired_keys(actor: Actor) -> int:
    count = idp().keyring.retire_expired()
    if count:
        audit.record("signing_keys_retired", actor=actor.label, count=count)
    return count


def describe_key(key: SigningKey) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "alg": key.alg,
        "state": key.state,
        "created_at": _iso(key.created_at),
        "retire_after": _iso(key.retire_after),
    }


def vapid_public_key() -> str:
    return str(idp().push.public_key())


# --- the audit log -------------------------------------------------------------------


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the audit log; ``None`` means any."""

    user_id: int | None = None
    client_id: str | None = None
    types: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    def select(self) -> Select[AuditEvent]:
        query = select(AuditEvent)
        if self.user_id is not None:
            query = query.where(AuditEvent.user_id == self.user_id)
        if self.client_id:
            query = query.where(AuditEvent.client_id == self.client_id)
        if self.types:
            query = query.where(AuditEvent.type.in_(self.types))
        if self.since is not None:
            query = query.where(AuditEvent.at >= self.since)
        if self.until is not None:
            query = query.where(AuditEvent.at < self.until)
        return query


def audit_events(
    query: AuditQuery, *, offset: int = 0, limit: int = DEFAULT_PAGE
) -> Page[AuditEvent]:
    """Matching events, newest first."""
    return _page(query.select().order_by(AuditEvent.id.desc()), offset, limit)


def export_audit(query: AuditQuery, *, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every matching event, oldest first, read in batches (for JSON lines)."""
    last_id = 0
    while True:
        rows = list(
            db.session.scalars(
                query.select().where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
            )
        )
        if not rows:
            return
        yield from describe_events(rows)
        last_id = rows[-1].id


def audit_event_types() -> list[str]:
    """The event types that occur in the log (for the filter's choices)."""
    return sorted(db.session.scalars(select(AuditEvent.type).distinct()))


def describe_events(events: Sequence[AuditEvent]) -> list[dict[str, Any]]:
    """Events as the API and the export show them: users by ``sub``."""
    ids = {e.user_id for e in events if e.user_id is not None}
    subs = dict(db.session.execute(select(User.id, User.sub).where(User.id.in_(ids))).tuples())
    return [
        {
            "id": event.id,
            "at": _iso(event.at),
            "type": event.type,
            "actor": event.actor,
            "user": subs.get(event.user_id) if event.user_id is not None else None,
            "client_id": event.client_id,
            "device_id": (event.detail or {}).get("device"),
            "ip": event.ip,
            "detail": dict(event.detail or {}),
        }
        for event in events
    ]


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
