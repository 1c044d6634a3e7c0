"""Client registrations: create, validate, rotate secrets, delete.

One place checks every field, so the CLI, the demo seed, dynamic registration
(idp.oidc.registration) and the admin pages refuse the same things with the
same messages.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import subjects
from ..auth.transactions import ACCOUNT_CLIENT_ID
from ..extensions import db
from ..state import idp
from .fields import (
    ALL_SCOPES,
    EDITABLE_FIELDS,
    FIELDS,
    GRANT_TYPES,
    MAX_CONTACTS,
    MAX_LIFETIME,
    MAX_NAME_LENGTH,
    MAX_URI_LENGTH,
    MIN_LIFETIME,
    SECRET_METHODS,
    dump,
)
from .models import ADMIN_SCOPE, Client, Consent, RefreshToken

SECRET_PURPOSE = "client-secret"


class ClientError(ValueError):
    """A registration is refused; ``field`` names the metadata at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class NewSecret:
    """A client secret in clear, to be shown exactly once."""

    client_id: str
    secret: str


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_no_userinfo(uri: str, field: str) -> None:
    """No user information before the host (``https://rp.example@evil.example/cb``
    goes to evil.example; RFC 3986 §7.6, RFC 9700 §4.1.1), and no backslash,
    which a browser reads as "/" where this parser does not, so that both read
    the same host (``http://evil.example\\@localhost/`` is evil.example to a
    browser, localhost to urlsplit)."""
    if "\\" in uri or not uri.isprintable():
        raise ClientError(field, f"{uri!r} is not a valid URI")
    if "@" in urlsplit(uri).netloc:
        raise ClientError(field, f"{uri}: must not contain user information (user@host)")


def check_redirect_uri(uri: str, *, public: bool, field: str = "redirect_uris") -> None:
    """RFC 9700 §2.1 / §4.1.1: absolute, exact, no fragment, no wildcard, no
    user information; plain http only on loopback (RFC 8252 §7.3);
    private-use schemes with a reverse domain name for native (public)
    clients (RFC 8252 §7.1)."""
    if not uri or len(uri) > 500 or any(c.isspace() for c in uri):
        raise ClientError(field, f"{uri!r} is not a valid URI")
    if "*" in uri:
        raise ClientError(field, f"{uri}: wildcards are not allowed, register each URI")
    _check_no_userinfo(uri, field)
    parts = urlsplit(uri)
    if parts.fragment or uri.endswith("#"):
        raise ClientError(field, f"{uri}: must not contain a fragment")
    if parts.scheme == "https":
        if not parts.hostname:
            raise ClientError(field, f"{uri}: has no host")
        return
    if parts.scheme == "http":
        if not is_loopback(parts.hostname):
            raise ClientError(field, f"{uri}: must use https (http only for loopback)")
        return
    if public and "." in parts.scheme and parts.scheme.isascii():
        return  # private-use URI scheme of a native app, e.g. com.example.app:/cb
    raise ClientError(field, f"{uri}: must be an https URI")


def _check_uris(uris: Any, *, public: bool, field: str) -> list[str]:
    if isinstance(uris, str) or not isinstance(uris, list | tuple):
        raise ClientError(field, "must be a list of URIs")
    checked: list[str] = []
    for uri in uris:
        if not isinstance(uri, str):
            raise ClientError(field, "must be a list of URIs")
        check_redirect_uri(uri, public=public, field=field)
        if uri not in checked:
            checked.append(uri)
    return checked


def _check_optional_uri(uri: str | None, field: str) -> str | None:
    if not uri:
        return None
    if not isinstance(uri, str) or len(uri) > MAX_URI_LENGTH:
        raise ClientError(field, f"must be a URI of at most {MAX_URI_LENGTH} characters")
    _check_no_userinfo(uri, field)
    parts = urlsplit(uri)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise ClientError(field, f"{uri}: must be an https URI")
    return uri


def check_backchannel_logout_uri(uri: Any, *, public: bool) -> str | None:
    """OpenID Connect Back-Channel Logout 1.0 §2.2: an absolute URI that MAY
    have a query and MUST NOT have a fragment; https, or plain http on a
    loopback host (tests and development; the spec allows http for
    confidential clients only). The server posts to it, so no wildcards, no
    spaces and no user information either."""
    field = "backchannel_logout_uri"
    if uri is None or uri == "":
        return None
    if not isinstance(uri, str) or len(uri) > MAX_URI_LENGTH or any(c.isspace() for c in uri):
        raise ClientError(field, f"must be a URI of at most {MAX_URI_LENGTH} characters")
    if "*" in uri:
        raise ClientError(field, f"{uri}: wildcards are not allowed")
    _check_no_userinfo(uri, field)
    parts = urlsplit(uri)
    if parts.fragment or uri.endswith("#"):
        raise ClientError(field, f"{uri}: must not contain a fragment")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and is_loopback(parts.hostname):
        if public:
            raise ClientError(field, f"{uri}: must use https for a public client")
        return uri
    raise ClientError(field, f"{uri}: must be an https URI (http only for loopback)")


def _check_contacts(contacts: Any) -> list[str]:
    if isinstance(contacts, str) or not isinstance(contacts, list | tuple):
        raise ClientError("contacts", "must be a list of addresses")
    if len(contacts) > MAX_CONTACTS:
        raise ClientError("contacts", f"at most {MAX_CONTACTS} addresses")
    for contact in contacts:
        if (
            not isinstance(contact, str)
            or not contact
            or len(contact) > 254
            or not contact.isprintable()
            or any(c.isspace() for c in contact)
        ):
            raise ClientError("contacts", "must be a list of addresses without spaces")
    return list(dict.fromkeys(contacts))


def _check_choices(client: Client) -> None:
    """Every one-of field holds one of its choices (declared in idp.oidc.fields)."""
    for field in FIELDS:
        value = getattr(client, field.attr)
        if field.kind == "option" and value is None:
            continue
        if field.kind in ("choice", "option") and value not in field.choices:
            raise ClientError(field.key, f"must be one of {', '.join(field.choices)}")
        if field.kind == "seconds" and not (
            value is None or (isinstance(value, int) and MIN_LIFETIME <= value <= MAX_LIFETIME)
        ):
            raise ClientError(field.key, "must be between 60 seconds and 400 days")


def validate(client: Client) -> None:
    """Check a (new or edited) registration as a whole."""
    if not isinstance(client.name, str) or not client.name or len(client.name) > MAX_NAME_LENGTH:
        raise ClientError("client_name", "is required (at most 200 characters)")
    if client.dynamically_registered and client.first_party:
        # A client that registered itself has proven nothing about who runs
        # it: its users always see the consent screen.
        raise ClientError("first_party", "a dynamically registered client is never first-party")
    _check_choices(client)
    public = client.token_endpoint_auth_method == "none"
    bad_grants = [g for g in client.grant_types if g not in GRANT_TYPES]
    if bad_grants or not client.grant_types:
        raise ClientError("grant_types", f"must be among {', '.join(GRANT_TYPES)}")
    if "client_credentials" in client.grant_types and public:
        raise ClientError("grant_types", "client_credentials needs a confidential client")
    client.redirect_uris = _check_uris(client.redirect_uris, public=public, field="redirect_uris")
    if "authorization_code" in client.grant_types and not client.redirect_uris:
        raise ClientError("redirect_uris", "at least one is required for authorization_code")
    client.post_logout_redirect_uris = _check_uris(
        client.post_logout_redirect_uris, public=public, field="post_logout_redirect_uris"
    )
    bad_scopes = [s for s in client.allowed_scopes if s not in ALL_SCOPES]
    if bad_scopes:
        raise ClientError("scope", f"unknown scopes: {' '.join(bad_scopes)}")
    if ADMIN_SCOPE in client.allowed_scopes and client.dynamically_registered:
        # Only an administrator gives a client the admin API (idp.admin.api).
        raise ClientError("scope", f"{ADMIN_SCOPE!r} is granted by administrators only")
    if public and not client.require_pkce:
        # RFC 9700 §2.1.1: public clients must use PKCE.
        raise ClientError("require_pkce", "public clients must use PKCE")
    if client.jwks and client.jwks_uri:
        # RFC 7591 §2: jwks and jwks_uri MUST NOT both be present.
        raise ClientError("jwks", "give either jwks or jwks_uri, not both")
    if client.token_endpoint_auth_method == "private_key_jwt" and not (
        client.jwks or client.jwks_uri
    ):
        raise ClientError("jwks", "private_key_jwt needs jwks or jwks_uri")
    if client.jwks:
        if not isinstance(client.jwks, dict):
            raise ClientError("jwks", "is not a valid JWK set")
        try:
            KeySet.import_key_set(cast(Any, client.jwks))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ClientError("jwks", "is not a valid JWK set") from exc
        if any(not isinstance(key, dict) or "d" in key for key in client.jwks.get("keys", [])):
            raise ClientError("jwks", "must hold public keys only")
    client.jwks_uri = _check_optional_uri(client.jwks_uri, "jwks_uri")
    client.logo_uri = _check_optional_uri(client.logo_uri, "logo_uri")
    client.contacts = _check_contacts(client.contacts or [])
    client.backchannel_logout_uri = check_backchannel_logout_uri(
        client.backchannel_logout_uri, public=public
    )
    if client.backchannel_logout_session_required is None:
        client.backchannel_logout_session_required = False
    elif not isinstance(client.backchannel_logout_session_required, bool):
        raise ClientError("backchannel_logout_session_required", "must be true or false")


def _new_secret(client: Client) -> str:
    secret = secrets.token_urlsafe(32)
    client.client_secret_digest = idp().digester.digest(secret, purpose=SECRET_PURPOSE)
    return secret


def create_client(
    *, client_id: str | None = None, dynamically_registered: bool = False, **fields: Any
) -> tuple[Client, str | None]:
    """Register a client from its fields (``idp.oidc.fields``, by column
    name; an omitted one takes its default); returns it and its secret in
    clear (None for clients that have no secret). Flushes; the caller commits."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"not client fields: {', '.join(sorted(unknown))}")
    if client_id is None:
        client_id = subjects.new_identifier()
    elif not client_id or len(client_id) > 128 or not client_id.isprintable() or " " in client_id:
        raise ClientError("client_id", "must be 1 to 128 printable characters without spaces")
    elif client_id == ACCOUNT_CLIENT_ID:
        # The account page's own login transactions (idp.auth.transactions).
        raise ClientError("client_id", f"{client_id!r} is reserved")
    elif subjects.in_use(client_id):
        # Another client's id, or a user's sub: a resource server reading
        # "sub" would take this client for that user (RFC 9068 §6).
        raise ClientError("client_id", f"{client_id!r} is taken")
    values = {
        field.attr: (
            _column_value(fields[field.attr])
            if field.attr in fields
            else field.new_default(dynamically_registered=dynamically_registered)
        )
        for field in FIELDS
    }
    client = Client(client_id=client_id, dynamically_registered=dynamically_registered, **values)
    validate(client)
    secret = _new_secret(client) if client.token_endpoint_auth_method in SECRET_METHODS else None
    db.session.add(client)
    try:
        db.session.flush()
    except IntegrityError:
        # The same id registered by a concurrent request a moment earlier
        # (the unique constraint decides): the same answer as above, never a
        # 500. The caller rolls the session back.
        raise ClientError("client_id", f"{client_id!r} is taken") from None
    return client, secret


def _column_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def update_client(client: Client, **changes: Any) -> str | None:
    """Change fields of a registration (names as in create_client), then
    check it as a whole like a new one.

    Returns a new secret in clear when the change moved the client to a
    secret method from one without a secret, else None; moving away from the
    secret methods drops the secret. Flushes; after a ClientError the caller
    rolls the session back."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(client, name, _column_value(value))
    validate(client)
    secret: str | None = None
    if client.token_endpoint_auth_method not in SECRET_METHODS:
        client.client_secret_digest = None
    elif not client.client_secret_digest:
        secret = _new_secret(client)
    db.session.flush()
    return secret


def set_secret(client: Client, secret: str) -> None:
    """Give a client a chosen secret (demo data only: real ones are random)."""
    if client.token_endpoint_auth_method not in SECRET_METHODS:
        raise ClientError("token_endpoint_auth_method", "this client has no secret")
    if len(secret) < 16:
        raise ClientError("client_secret", "must be at least 16 characters")
    client.client_secret_digest = idp().digester.digest(secret, purpose=SECRET_PURPOSE)


def rotate_secret(client: Client) -> NewSecret:
    """A new random secret; the old one stops working at once."""
    if client.token_endpoint_auth_method not in SECRET_METHODS:
        raise ClientError("token_endpoint_auth_method", "this client has no secret")
    return NewSecret(client_id=client.client_id, secret=_new_secret(client))


def get_client(client_id: str) -> Client | None:
    return db.session.scalar(select(Client).where(Client.client_id == client_id))


def list_clients() -> list[Client]:
    return list(db.session.scalars(select(Client).order_by(Client.created_at, Client.id)))


def delete_client(client: Client) -> None:
    """Remove the registration with its refresh tokens and consents."""
    db.session.execute(
        RefreshToken.__table__.delete().where(RefreshToken.client_id == client.client_id)
    )
    db.session.execute(Consent.__table__.delete().where(Consent.client_id == client.client_id))
    db.session.delete(client)
    db.session.flush()


def describe(client: Client) -> dict[str, Any]:
    """The registration as JSON, every field under its metadata name
    (``idp.oidc.fields``); never the secret."""
    return {
        "client_id": client.client_id,
        **{field.key: dump(field, getattr(client, field.attr)) for field in FIELDS},
        "dynamically_registered": client.dynamically_registered,
        "disabled": client.disabled,
        "created_at": client.created_at.isoformat() if client.created_at else None,
    }
