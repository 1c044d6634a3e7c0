"""Administration: the operations the admin pages, the admin JSON API and the
``idp`` CLI share, so the three stay consistent.

Every change takes the acting ``Actor`` and records one audit event naming it
(``admin:USER_ID`` on the pages, ``api:CLIENT_ID`` for a token, ``cli`` for an
operator at the command line). Lookups that find nothing raise ``NotFound``.
Callers commit nothing themselves: each change commits with its audit event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from .. import audit
from ..accounts import service as accounts
from ..accounts.models import User, UserStatus
from ..accounts.passwords import PasswordService
from ..audit import AuditEvent
from ..auth.sessions import end_user_sessions
from ..devices import service as devices
from ..devices.models import Device
from ..errors import IdpError
from ..extensions import db, utcnow
from ..oidc import clients
from ..oidc.clients import ClientError, NewSecret
from ..oidc.models import Client, RefreshToken, SigningKey
from ..passkeys.models import Passkey
from ..restore.models import RestorationSetup
from ..sessions import service as sessions
from ..sessions.service import SessionSummary
from ..state import idp
from .audit_log import AuditQuery, audit_events, describe_events
from .paging import DEFAULT_PAGE, Page, iso, page_query

T = TypeVar("T")

RECENT_EVENTS = 20


class AdminError(IdpError):
    status = 400
    error = "invalid_request"


class NotFound(AdminError):
    status = 404
    error = "not_found"
    message = _l("There is no such entry (any more).")


class NotOnYourself(AdminError):
    """What an administrator may not do to their own account: lock it, or take
    their own role away (another administrator can); so nobody locks the
    last door behind them by accident."""

    status = 409
    error = "not_on_yourself"
    message = _l("Administrators cannot lock their own account or take their own role away.")


@dataclass(frozen=True)
class Actor:
    """Who acts: ``label`` goes into the audit log's ``actor``."""

    label: str
    user_id: int | None = None

    @classmethod
    def admin(cls, user: User) -> Actor:
        return cls(label=f"admin:{user.id}", user_id=user.id)

    @classmethod
    def token(cls, client_id: str, user: User | None = None) -> Actor:
        """An admin API call: the client, and the administrator whose token it is."""
        if user is not None:
            return cls(label=f"admin:{user.id} api:{client_id}"[:128], user_id=user.id)
        return cls(label=f"api:{client_id}"[:128])

    @classmethod
    def cli(cls) -> Actor:
        return cls(label="cli")


# --- users ---------------------------------------------------------------------------


def search_users(text: str | None, *, offset: int = 0, limit: int = DEFAULT_PAGE) -> Page[User]:
    """Users whose access number, username, e-mail or name contains ``text``."""
    query = select(User).order_by(User.id)
    text = (text or "").strip().lower()
    if text:
        pattern = f"%{_escape_like(text)}%"
        query = query.where(
            # The keys are lower case as Python folds it (SQL's lower() folds
            # only ASCII on SQLite).
            User.email_key.like(pattern, escape="\\")
            | User.username_key.like(pattern, escape="\\")
            | func.lower(User.given_name).like(pattern, escape="\\")
            | func.lower(User.family_name).like(pattern, escape="\\")
            | User.access_number.like(pattern, escape="\\")
        )
    return page_query(query, offset, limit)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_user(sub: str) -> User:
    """A user by ``sub`` (the id the admin pages, API and CLI show)."""
    user: User | None = db.session.scalar(select(User).where(User.sub == sub)) if sub else None
    if user is None:
        raise NotFound()
    return user


def find_user(identifier: str) -> User:
    """A user by what an operator types: access number, user name, e-mail
    (when only one account has it) or ``sub``."""
    lookup = accounts.find_user(identifier)
    if lookup.ambiguous_email:
        raise AdminError(f"{identifier} belongs to several accounts; use the access number")
    if lookup.user is not None:
        return lookup.user
    return get_user(identifier.strip())


def create_user(actor: Actor, passwords: PasswordService, *, password: str, **fields: Any) -> User:
    """A new active account (``accounts.AccountError`` says what is wrong)."""
    user = accounts.create_user(passwords, password=password, **fields)
    audit.record("user_created", user_id=user.id, actor=actor.label)
    return user


def describe_user(user: User) -> dict[str, Any]:
    return {
        "sub": user.sub,
        "access_number": user.access_number,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "phone_number": user.phone_number,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "status": user.status,
        "is_admin": user.is_admin,
        "password_reset_required": user.password_reset_required,
        "created_at": iso(user.created_at),
    }


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


def describe_passkey(passkey: Passkey) -> dict[str, Any]:
    return {
        "id": passkey.id,
        "name": passkey.name,
        "backup_eligible": passkey.backup_eligible,
        "created_at": iso(passkey.created_at),
        "last_used_at": iso(passkey.last_used_at),
    }


def describe_overview(overview: UserOverview) -> dict[str, Any]:
    """A user with devices, passkeys, restoration and recent events, as the
    API and ``idp users show --json`` print it."""
    return {
        **describe_user(overview.user),
        "devices": [describe_device(d) for d in overview.devices],
        "passkeys": [describe_passkey(p) for p in overview.passkeys],
        "restoration": {
            "active": overview.restoration_active,
            "activated_at": iso(overview.restoration_activated_at),
        },
        "recent_events": describe_events(overview.recent_events),
    }


def user_devices(user: User) -> list[Device]:
    """The user's active devices, oldest first."""
    return devices.active_devices(user.id)


def describe_device(device: Device) -> dict[str, Any]:
    return {k: v for k, v in devices.describe(device).items() if k != "this_device"}


def lock_user(actor: Actor, user: User) -> None:
    """No new logins; login sessions and refresh tokens end at once."""
    if actor.user_id == user.id:
        raise NotOnYourself()
    user.status = UserStatus.LOCKED
    # Its clients are told once the unit of work commits (Back-Channel Logout);
    # access tokens are refused at userinfo and introspection from now on,
    # because the user is no longer active.
    end_user_sessions(user.id, reason="locked")
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    audit.record("user_locked", user_id=user.id, actor=actor.label)


def unlock_user(actor: Actor, user: User) -> None:
    accounts.unlock_user(user)
    audit.record("user_unlocked", user_id=user.id, actor=actor.label)


def force_password_reset(actor: Actor, user: User) -> None:
    """The next password login must choose a new password first; the user's
    login sessions end now, so nobody stays signed in on the old password
    (and the clients they signed in to are told, Back-Channel Logout)."""
    user.password_reset_required = True
    end_user_sessions(user.id, reason="password_reset")
    audit.record("password_reset_forced", user_id=user.id, actor=actor.label)


def set_admin(actor: Actor, user: User, *, admin: bool) -> None:
    if not admin and actor.user_id == user.id:
        raise NotOnYourself()
    if user.is_admin == admin:
        return
    user.is_admin = admin
    audit.record(
        "admin_granted" if admin else "admin_revoked",
        user_id=user.id,
        actor=actor.label,
    )


def remove_device(
    actor: Actor,
    user: User,
    device_id: str,
    *,
    ip: str | None = None,
    reason: devices.DeletionReason | None = None,
    sign_out: bool | None = None,
) -> int:
    """Revoke one of ``user``'s devices at once; how many they have left.
    ``ip``: where the administrator's request came from (None: the idp command).
    ``sign_out``: also end the login sessions it confirmed (refresh tokens
    revoked, their clients told); None: as ``reason`` suggests (yes for a lost
    or stolen device)."""
    target = db.session.get(Device, device_id[:64]) if device_id else None
    if target is None or target.user_id != user.id or not target.is_active:
        raise NotFound()
    if sign_out is None:
        sign_out = devices.sign_out_by_default(reason)
    try:
        return devices.revoke_device(
            target, now=utcnow(), actor=actor.label, ip=ip, reason=reason, sign_out=sign_out
        )
    except devices.DeviceNotFound:
        raise NotFound() from None


def user_sessions(user: User) -> list[SessionSummary]:
    """The user's open login sessions, the most recently active first."""
    return sessions.sessions_of(user.id)


def describe_session(summary: SessionSummary) -> dict[str, Any]:
    return sessions.describe(summary)


def end_session(actor: Actor, user: User, sid: str) -> None:
    """End one of the user's login sessions (refresh tokens revoked, its
    clients told); ``NotFound`` for one that is not open or not theirs."""
    try:
        sessions.end_session(user.id, sid, actor=actor.label, reason=sessions.REASON_ADMIN)
    except sessions.SessionNotFound:
        raise NotFound() from None


def end_all_sessions(actor: Actor, user: User) -> int:
    """End every login session of the user; how many ended."""
    return sessions.end_all_sessions(user.id, actor=actor.label, reason=sessions.REASON_ADMIN)


# --- clients -------------------------------------------------------------------------
#
# Field names are the model's (``name``, ``allowed_scopes``, ...: see
# ``clients.create_client``); a ``ClientError`` names the field at fault in
# RFC 7591 terms (``client_name``, ``scope``, ...). The admin API and CLI
# translate names; the checks are all in ``idp.oidc.clients``.


def search_clients(text: str | None, *, offset: int = 0, limit: int = DEFAULT_PAGE) -> Page[Client]:
    """Clients whose client ID or name contains ``text``, oldest first."""
    query = select(Client).order_by(Client.created_at, Client.id)
    text = (text or "").strip().lower()
    if text:
        pattern = f"%{_escape_like(text)}%"
        query = query.where(
            func.lower(Client.client_id).like(pattern, escape="\\")
            | func.lower(Client.name).like(pattern, escape="\\")
        )
    return page_query(query, offset, limit)


def get_client(client_id: str) -> Client:
    client = clients.get_client(client_id) if client_id else None
    if client is None:
        raise NotFound()
    return client


def create_client(actor: Actor, **fields: Any) -> tuple[Client, str | None]:
    """Register a client; its secret in clear (None without one), shown once."""
    try:
        client, secret = clients.create_client(**fields)
    except ClientError:
        db.session.rollback()
        raise
    audit.record("client_created", client_id=client.client_id, actor=actor.label)
    return client, secret


def update_client(actor: Actor, client: Client, **fields: Any) -> str | None:
    """Change a registration, checked as a whole. Returns a new secret in
    clear when the client moved to a secret method (shown once)."""
    before = describe_client(client)
    try:
        secret = clients.update_client(client, **fields)
    except ClientError:
        db.session.rollback()
        raise
    after = describe_client(client)
    changed = sorted(k for k in after if after[k] != before.get(k))
    if changed:
        audit.record(
            "client_updated",
            client_id=client.client_id,
            actor=actor.label,
            fields=changed,
        )
    return secret


def set_client_disabled(actor: Actor, client: Client, *, disabled: bool) -> None:
    """A disabled client gets no logins, tokens or admin API calls through."""
    if client.disabled == disabled:
        return
    client.disabled = disabled
    audit.record(
        "client_disabled" if disabled else "client_enabled",
        client_id=client.client_id,
        actor=actor.label,
    )


def delete_client(actor: Actor, client: Client) -> None:
    """Remove the registration with its refresh tokens and consents."""
    client_id = client.client_id
    clients.delete_client(client)
    audit.record("client_deleted", client_id=client_id, actor=actor.label)


def rotate_client_secret(actor: Actor, client: Client) -> NewSecret:
    """A new secret, shown once; the old one stops working at once."""
    new = clients.rotate_secret(client)
    audit.record("client_secret_rotated", client_id=client.client_id, actor=actor.label)
    return new


def describe_client(client: Client) -> dict[str, Any]:
    """The whole registration (never the secret, only whether there is one)."""
    return {**clients.describe(client), "has_secret": client.client_secret_digest is not None}


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
        "created_at": iso(key.created_at),
        "retire_after": iso(key.retire_after),
    }


def vapid_public_key() -> str:
    return str(idp().push.public_key())
