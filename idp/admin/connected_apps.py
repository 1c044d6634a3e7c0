"""A user's connected apps as administrators see and remove them (the admin
pages and the admin API), through the same service as the account page
(idp.oidc.connected_apps), with the administrator as the audit event's actor."""

from __future__ import annotations

from typing import Any

from ..accounts.models import User
from ..oidc import connected_apps
from ..oidc.connected_apps import ConnectedApp, RemovedAccess
from .paging import iso
from .service import Actor, NotFound


def user_apps(user: User) -> list[ConnectedApp]:
    """The apps ``user`` has given access to, most recently used first."""
    return connected_apps.connected_apps(user.id)


def user_app(user: User, client_id: str) -> ConnectedApp:
    try:
        return connected_apps.connected_app(user.id, client_id)
    except connected_apps.NotConnected:
        raise NotFound() from None


def remove_app(actor: Actor, user: User, client_id: str) -> RemovedAccess:
    """Take back the access ``user`` gave ``client_id`` (consent, tokens,
    sign-ins; ``app_access_removed`` with ``actor``); ``NotFound`` if it has none."""
    try:
        return connected_apps.remove_access(user.id, client_id, actor=actor.label)
    except connected_apps.NotConnected:
        raise NotFound() from None


def describe_app(app: ConnectedApp) -> dict[str, Any]:
    return {
        "client_id": app.client_id,
        "name": app.name,
        "scopes": list(app.scopes),
        "granted_at": iso(app.granted_at),
        "last_used_at": iso(app.last_used_at),
        "offline_access": app.offline,
    }
