"""The admin JSON API (``/admin/api/v1``); see docs/admin-api.md.

Every call needs an OAuth 2.0 bearer access token with the ``admin`` scope
(RFC 6750): a client's own (client credentials, for automation) or an
administrator's. The operations are those of the admin pages and the ``idp``
CLI (``idp.admin.service``); requests and responses go through the models of
``idp.admin.schemas``, from which ``/admin/api/v1/openapi.json`` is made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response, g, jsonify, request, stream_with_context

from ..accounts.models import User
from ..errors import ApiBlueprint, IdpError, render_error
from ..extensions import csrf
from ..oidc.bearer import BearerRefused, NoBearerToken, ScopeMissing, bearer_token
from ..oidc.client_auth import query_client
from ..oidc.clients import ClientError
from ..oidc.fields import BY_KEY, load
from ..oidc.models import ADMIN_SCOPE
from ..openapi import Api, InvalidInput
from ..state import idp
from . import audit_log, connected_apps, paging, schemas, service
from .service import Actor

bp = ApiBlueprint("admin_api", __name__, url_prefix="/admin/api/v1")
csrf.exempt(bp)  # bearer tokens, no cookies


def _security_schemes(*, token_url: str) -> dict[str, Any]:
    return {
        "oauth2": {
            "type": "oauth2",
            "description": "A client registered with the client_credentials "
            "grant and allowed the admin scope.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": token_url,
                    "scopes": {"admin": "Manage clients, users, devices and keys."},
                }
            },
        },
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token with the admin scope (RFC 6750).",
        },
    }


api = Api(
    bp,
    title="Freigabe admin API",
    version="1",
    security_schemes=_security_schemes,
    security=[{"oauth2": ["admin"]}, {"bearer": []}],
    description="Client registrations, users, devices, signing keys and the audit log. "
    "Every call needs a bearer access token with the admin scope.",
)

REALM = "freigabe-admin"


class BearerError(IdpError):
    """RFC 6750 §3: a request refused for its token, with a challenge."""

    status = 401
    error = "invalid_token"
    message = "The access token is invalid, expired or revoked, or no longer entitled."

    def challenge(self) -> str:
        return (
            f'Bearer realm="{REALM}", error="{self.error}", '
            f'error_description="{self.message}", scope="{ADMIN_SCOPE}"'
        )


class MissingToken(BearerError):
    # RFC 6750 §3.1: without credentials, the challenge carries no error code.
    error = "missing_token"
    message = "A bearer access token with the admin scope is required."

    def challenge(self) -> str:
        return f'Bearer realm="{REALM}", scope="{ADMIN_SCOPE}"'


class InsufficientScope(BearerError):
    status = 403
    error = "insufficient_scope"
    message = "The access token does not carry the admin scope."


@dataclass(frozen=True)
class Caller:
    """Whose token the request came with."""

    client_id: str
    user: User | None
    actor: Actor


def caller() -> Caller:
    found: Caller = g.admin_caller
    return found


def _authenticate() -> Caller:
    try:
        token = bearer_token([ADMIN_SCOPE])
    except NoBearerToken:
        raise MissingToken() from None
    except ScopeMissing:
        raise InsufficientScope() from None
    except BearerRefused:
        raise BearerError() from None  # unknown, expired or revoked
    # The token stands only while its grant does: the client is still
    # enabled and allowed the scope, and a user is still an active admin.
    client = query_client(token.client_id)
    if client is None or ADMIN_SCOPE not in client.allowed_scopes:
        raise BearerError()
    user = None
    if token.user_id is not None:
        user = token.get_user()
        if user is None or not user.is_active or not user.is_admin:
            raise BearerError()
    return Caller(client_id=client.client_id, user=user, actor=Actor.token(client.client_id, user))


@bp.before_request
def _before() -> None:
    if request.endpoint == "admin_api.openapi_document":
        return
    g.admin_caller = _authenticate()
    # PostgreSQL text holds no NUL: refuse it here rather than fail later.
    if any("\x00" in value for value in (request.view_args or {}).values()):
        raise InvalidInput({"path": "must not contain NUL characters"})


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(BearerError)
def _bearer_error(exc: BearerError) -> Response:
    response = render_error(exc.error, exc.message, exc.status)
    response.headers["WWW-Authenticate"] = exc.challenge()
    return response


@bp.errorhandler(ClientError)
def _client_error(exc: ClientError) -> Response:
    return render_error("invalid_request", str(exc), 400, fields={exc.field: exc.message})


def _page(page: paging.Page[Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """The envelope of every listing, around ``items`` (the page's, described)."""
    return {
        "items": items,
        "total": page.total,
        "offset": page.offset,
        "limit": page.limit,
        "next_offset": page.next_offset,
    }


@bp.get("/openapi.json")
def openapi_document() -> Response:
    issuer = idp().settings.issuer
    response = jsonify(
        api.document(server_url=issuer + (bp.url_prefix or ""), token_url=issuer + "/token")
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# --- clients ---------------------------------------------------------------------------


def _client_fields(data: dict[str, Any]) -> dict[str, Any]:
    """API field names (RFC 7591) to the columns' (idp.oidc.fields); a
    ``scope`` of null is left out (a new client's default)."""
    fields: dict[str, Any] = {}
    for key, value in data.items():
        field = BY_KEY.get(key)
        if field is None:
            fields[key] = value  # client_id
        elif not (field.joined and value is None):
            fields[field.attr] = load(field, value)
    return fields


def _with_secret(client: Any, secret: str | None) -> dict[str, Any]:
    return {**service.describe_client(client), "client_secret": secret}


@api.operation(
    "GET", "/clients", tag="clients", query=schemas.SearchQuery, response=schemas.ClientPage
)
def list_clients(query: schemas.SearchQuery) -> dict[str, Any]:
    """List client registrations (search by client ID or name)."""
    page = service.search_clients(query.q, offset=query.offset, limit=query.limit)
    return _page(page, [service.describe_client(c) for c in page.items])


@api.operation(
    "POST",
    "/clients",
    tag="clients",
    status=201,
    body=schemas.NewClient,
    response=schemas.ClientWithSecret,
)
def create_client(body: schemas.NewClient) -> dict[str, Any]:
    """Register a client; its secret is in this response only."""
    data = body.model_dump()
    if data["client_id"] is None:
        del data["client_id"]
    client, secret = service.create_client(caller().actor, **_client_fields(data))
    return _with_secret(client, secret)


@api.operation("GET", "/clients/{client_id}", tag="clients", response=schemas.Client)
def get_client(client_id: str) -> dict[str, Any]:
    """One client registration."""
    return service.describe_client(service.get_client(client_id))


@api.operation(
    "PATCH",
    "/clients/{client_id}",
    tag="clients",
    body=schemas.ClientChanges,
    response=schemas.ClientWithSecret,
    description="Only the fields sent change. A client moved to a secret method gets a "
    "new secret, in this response only.",
)
def update_client(client_id: str, body: schemas.ClientChanges) -> dict[str, Any]:
    """Change a client registration."""
    client = service.get_client(client_id)
    changes = _client_fields(body.model_dump(include=body.model_fields_set))
    secret = service.update_client(caller().actor, client, **changes)
    return _with_secret(client, secret)


@api.operation("POST", "/clients/{client_id}/disable", tag="clients", response=schemas.Client)
def disable_client(client_id: str) -> dict[str, Any]:
    """Disable a client: no logins, tokens or admin calls through it."""
    client = service.get_client(client_id)
    service.set_client_disabled(caller().actor, client, disabled=True)
    return service.describe_client(client)


@api.operation("POST", "/clients/{client_id}/enable", tag="clients", response=schemas.Client)
def enable_client(client_id: str) -> dict[str, Any]:
    """Enable a disabled client again."""
    client = service.get_client(client_id)
    service.set_client_disabled(caller().actor, client, disabled=False)
    return service.describe_client(client)


@api.operation("DELETE", "/clients/{client_id}", tag="clients", status=204)
def delete_client(client_id: str) -> None:
    """Delete a registration with its refresh tokens and consents."""
    service.delete_client(caller().actor, service.get_client(client_id))


@api.operation("POST", "/clients/{client_id}/secret", tag="clients", response=schemas.ClientSecret)
def rotate_client_secret(client_id: str) -> dict[str, Any]:
    """Replace the client secret; the old one stops working at once."""
    new = service.rotate_client_secret(caller().actor, service.get_client(client_id))
    return {"client_id": new.client_id, "client_secret": new.secret}


# --- users and devices ---------------------------------------------------------------


@api.operation("GET", "/users", tag="users", query=schemas.SearchQuery, response=schemas.UserPage)
def list_users(query: schemas.SearchQuery) -> dict[str, Any]:
    """Search users by access number, user name, e-mail or name."""
    page = service.search_users(query.q, offset=query.offset, limit=query.limit)
    return _page(page, [service.describe_user(u) for u in page.items])


@api.operation("GET", "/users/{sub}", tag="users", response=schemas.UserDetails)
def get_user(sub: str) -> dict[str, Any]:
    """A user with devices, passkeys, restoration status and recent events."""
    return service.describe_overview(service.user_overview(service.get_user(sub)))


def _user_action(sub: str, action: Callable[[Actor, User], None]) -> dict[str, Any]:
    user = service.get_user(sub)
    action(caller().actor, user)
    return service.describe_user(user)


@api.operation("POST", "/users/{sub}/lock", tag="users", response=schemas.User, errors=(409,))
def lock_user(sub: str) -> dict[str, Any]:
    """Lock an account: its sessions and refresh tokens end at once."""
    return _user_action(sub, service.lock_user)


@api.operation("POST", "/users/{sub}/unlock", tag="users", response=schemas.User)
def unlock_user(sub: str) -> dict[str, Any]:
    """Unlock an account."""
    return _user_action(sub, service.unlock_user)


@api.operation("POST", "/users/{sub}/force-password-reset", tag="users", response=schemas.User)
def force_password_reset(sub: str) -> dict[str, Any]:
    """The next password login must choose a new password; sessions end now."""
    return _user_action(sub, service.force_password_reset)


@api.operation("PUT", "/users/{sub}/admin", tag="users", response=schemas.User)
def grant_admin(sub: str) -> dict[str, Any]:
    """Make the user an administrator."""
    return _user_action(sub, lambda actor, user: service.set_admin(actor, user, admin=True))


@api.operation("DELETE", "/users/{sub}/admin", tag="users", response=schemas.User, errors=(409,))
def revoke_admin(sub: str) -> dict[str, Any]:
    """Take the administrator role away; the user's admin tokens stop working."""
    return _user_action(sub, lambda actor, user: service.set_admin(actor, user, admin=False))


@api.operation(
    "GET",
    "/users/{sub}/devices",
    tag="devices",
    query=schemas.PageQuery,
    response=schemas.DevicePage,
)
def list_devices(sub: str, query: schemas.PageQuery) -> dict[str, Any]:
    """The user's active devices, oldest first."""
    devices = service.user_devices(service.get_user(sub))
    page = paging.page_of(devices, query.offset, query.limit)
    return _page(page, [service.describe_device(d) for d in page.items])


@api.operation(
    "DELETE",
    "/users/{sub}/devices/{device_id}",
    tag="devices",
    status=204,
    query=schemas.DeviceRemoval,
)
def remove_device(sub: str, device_id: str, query: schemas.DeviceRemoval) -> None:
    """Revoke one of the user's devices at once (and, with sign_out, end the
    login sessions it confirmed)."""
    service.remove_device(
        caller().actor,
        service.get_user(sub),
        device_id,
        ip=request.remote_addr,
        reason=query.reason,
        sign_out=query.sign_out,
    )


@api.operation(
    "GET",
    "/users/{sub}/sessions",
    tag="sessions",
    query=schemas.PageQuery,
    response=schemas.SessionPage,
)
def list_sessions(sub: str, query: schemas.PageQuery) -> dict[str, Any]:
    """The user's open login sessions, the most recently active first."""
    found = service.user_sessions(service.get_user(sub))
    page = paging.page_of(found, query.offset, query.limit)
    return _page(page, [service.describe_session(s) for s in page.items])


@api.operation("POST", "/users/{sub}/sessions/{sid}/end", tag="sessions", status=204)
def end_session(sub: str, sid: str) -> None:
    """End one login session: its refresh tokens are revoked and the apps it
    signed in to get back-channel logout."""
    service.end_session(caller().actor, service.get_user(sub), sid)


@api.operation(
    "POST", "/users/{sub}/sessions/end-all", tag="sessions", response=schemas.EndedSessions
)
def end_all_sessions(sub: str) -> dict[str, Any]:
    """End every login session of the user."""
    return {"ended": service.end_all_sessions(caller().actor, service.get_user(sub))}


@api.operation(
    "GET",
    "/users/{sub}/apps",
    tag="apps",
    query=schemas.PageQuery,
    response=schemas.ConnectedAppPage,
)
def list_apps(sub: str, query: schemas.PageQuery) -> dict[str, Any]:
    """The apps the user has given access to (consents), most recently used first."""
    apps = connected_apps.user_apps(service.get_user(sub))
    page = paging.page_of(apps, query.offset, query.limit)
    return _page(page, [connected_apps.describe_app(a) for a in page.items])


@api.operation("DELETE", "/users/{sub}/apps/{client_id}", tag="apps", status=204)
def remove_app(sub: str, client_id: str) -> None:
    """Remove an app's access: the consent is deleted, its refresh and access tokens
    for the user are revoked, it gets a back-channel logout for the user's sessions,
    and it asks for consent again at the next sign-in."""
    connected_apps.remove_app(caller().actor, service.get_user(sub), client_id)


# --- keys ----------------------------------------------------------------------------


@api.operation("GET", "/keys", tag="keys", query=schemas.PageQuery, response=schemas.SigningKeyPage)
def list_keys(query: schemas.PageQuery) -> dict[str, Any]:
    """Signing keys, newest first: active, retiring (still published), retired."""
    page = paging.page_of(service.signing_keys(), query.offset, query.limit)
    return _page(page, [service.describe_key(k) for k in page.items])


@api.operation(
    "POST",
    "/keys/rotate",
    tag="keys",
    body=schemas.KeyRotation,
    body_required=False,
    response=schemas.RotatedKeys,
)
def rotate_keys(body: schemas.KeyRotation) -> dict[str, Any]:
    """New active signing keys; the old ones stay published while tokens they signed live."""
    keys = service.rotate_signing_keys(caller().actor, list(dict.fromkeys(body.algs)))
    return {"rotated": [service.describe_key(key) for key in keys]}


@api.operation("POST", "/keys/retire-expired", tag="keys", response=schemas.RetiredKeys)
def retire_expired_keys() -> dict[str, Any]:
    """Stop publishing retiring keys whose tokens have all expired."""
    return {"retired": service.retire_expired_keys(caller().actor)}


@api.operation("GET", "/keys/vapid", tag="keys", response=schemas.VapidKey)
def vapid_key() -> dict[str, Any]:
    """The VAPID public key that Web Push services see (RFC 8292)."""
    return {"public_key": service.vapid_public_key()}


# --- the audit log -------------------------------------------------------------------


def _audit_query(given: schemas.AuditFilter) -> audit_log.AuditQuery | None:
    """The service's query; None when no event can match (an unknown user)."""
    user_id = None
    if given.user:
        try:
            user_id = service.get_user(given.user).id
        except service.NotFound:
            return None
    return audit_log.AuditQuery(
        user_id=user_id,
        client_id=given.client_id,
        types=tuple(given.type),
        since=given.since,
        until=given.until,
    )


@api.operation(
    "GET",
    "/audit/events",
    tag="audit",
    query=schemas.AuditPageQuery,
    response=schemas.AuditEventPage,
)
def list_audit_events(query: schemas.AuditPageQuery) -> dict[str, Any]:
    """Security events, newest first, filtered by user, client, type and time."""
    found = _audit_query(query)
    if found is None:
        return _page(paging.Page([], 0, query.offset, query.limit), [])
    page = audit_log.audit_events(found, offset=query.offset, limit=query.limit)
    return _page(page, audit_log.describe_events(page.items))


@api.operation(
    "GET",
    "/audit/export",
    tag="audit",
    query=schemas.AuditFilter,
    response=schemas.AuditEvent,
    media_type="application/x-ndjson",
    description="JSON lines: one AuditEvent object per line, oldest first.",
)
def export_audit_events(query: schemas.AuditFilter) -> Response:
    """Every matching event as JSON lines."""
    found = _audit_query(query)

    def lines() -> Iterator[str]:
        if found is None:
            return
        for event in audit_log.export_audit(found):
            yield json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"

    return Response(
        stream_with_context(lines()),
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit-events.jsonl"'},
    )


@api.operation("GET", "/audit/types", tag="audit", response=schemas.AuditTypes)
def audit_types() -> dict[str, Any]:
    """The event types that occur in the log (for a filter's choices)."""
    return {"types": audit_log.audit_event_types()}
