"""Dynamic client registration: RFC 7591 (register), RFC 7592 (read, update,
delete) and the initial access tokens that gate it (RFC 7591 §3).

The endpoints in ``idp.oidc.views`` are thin: they parse the JSON body
(``idp.oidc.metadata``), hand it and the ``Authorization`` header to the
functions here and render the Authlib error
classes these raise (``invalid_redirect_uri``, ``invalid_client_metadata``,
``invalid_token``...). Every client field is checked by ``idp.oidc.clients``,
exactly as for a client an administrator adds. The CLI and the admin pages
issue initial access tokens through ``issue_initial_token``.

Secrets at rest: initial access tokens, registration access tokens and client
secrets are random and kept only as keyed digests (``idp.tokens``). Each is
shown once: an initial access token when issued; the client secret and the
registration access token in the registration response. RFC 7592 §3 lets the
server issue a new registration access token on every update; we do, so a
token that leaked from an old configuration stops working with the next
update (the client must keep the one in the latest response).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6750 import InvalidTokenError
from sqlalchemy import select

from .. import audit
from ..extensions import db, utcnow
from ..state import idp
from ..store.ratelimit import Limit, LimitReached, reserve, retry_after
from ..tokens import new_token
from . import metadata
from .clients import (
    ClientError,
    create_client,
    delete_client,
    describe,
    get_client,
    update_client,
)
from .metadata import ClientMetadata, ConfigurationUpdate, metadata_error
from .models import Client, InitialAccessToken

log = logging.getLogger(__name__)

INITIAL_TOKEN_PURPOSE = "initial-access-token"
REGISTRATION_TOKEN_PURPOSE = "registration-access-token"
# The audit log's actor for changes a client makes to its own registration.
ACTOR = "dcr"

DEFAULT_INITIAL_TOKEN_LIFETIME = 86400
MIN_INITIAL_TOKEN_LIFETIME = 60
MAX_INITIAL_TOKEN_LIFETIME = 365 * 86400
MAX_INITIAL_TOKEN_USES = 10000
OPEN_REGISTRATION_WINDOW = 3600

# RFC 6750 §2.1: "Bearer" and a b64token.
BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*) *", re.IGNORECASE)


class InitialTokenError(ValueError):
    """An initial access token cannot be issued as asked."""


class MissingTokenError(InvalidTokenError):
    """No credentials at all: 401 ``invalid_token`` in the body, and a bare
    challenge (RFC 6750 §3.1: no error code when none was sent)."""

    def get_headers(self) -> list[tuple[str, str]]:
        return [*default_json_headers, ("WWW-Authenticate", "Bearer")]


class TooManyRegistrations(OAuth2Error):
    """Open registration throttled for this IP address."""

    error = "too_many_attempts"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many registrations from this address; try again later.")
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        return [*default_json_headers, ("Retry-After", str(self.retry_after))]


# --- initial access tokens (RFC 7591 §3) -------------------------------------------


@dataclass(frozen=True)
class IssuedInitialToken:
    """An initial access token in clear, to be shown exactly once."""

    id: int
    token: str
    uses: int
    expires_at: datetime


def issue_initial_token(
    *, actor: str, expires_in: int = DEFAULT_INITIAL_TOKEN_LIFETIME, uses: int = 1
) -> IssuedInitialToken:
    """A bearer token good for ``uses`` registrations within ``expires_in``
    seconds, with the audit event naming ``actor`` (in the caller's unit of work)."""
    if not MIN_INITIAL_TOKEN_LIFETIME <= expires_in <= MAX_INITIAL_TOKEN_LIFETIME:
        raise InitialTokenError(
            f"expires_in must be between {MIN_INITIAL_TOKEN_LIFETIME} and "
            f"{MAX_INITIAL_TOKEN_LIFETIME} seconds"
        )
    if not 1 <= uses <= MAX_INITIAL_TOKEN_USES:
        raise InitialTokenError(f"uses must be between 1 and {MAX_INITIAL_TOKEN_USES}")
    token = new_token(32)
    row = InitialAccessToken(
        digest=idp().digester.digest(token, purpose=INITIAL_TOKEN_PURPOSE),
        uses=uses,
        uses_left=uses,
        expires_at=utcnow() + timedelta(seconds=expires_in),
        created_by=actor,
    )
    db.session.add(row)
    db.session.flush()
    audit.record(
        "initial_access_token_issued",
        actor=actor,
        token_id=row.id,
        uses=uses,
        expires_at=row.expires_at.isoformat(),
    )
    return IssuedInitialToken(id=row.id, token=token, uses=uses, expires_at=row.expires_at)


def initial_tokens(*, include_spent: bool = False) -> list[InitialAccessToken]:
    """Issued initial access tokens, newest first (never the tokens themselves)."""
    query = select(InitialAccessToken).order_by(
        InitialAccessToken.created_at.desc(), InitialAccessToken.id.desc()
    )
    if not include_spent:
        query = query.where(
            InitialAccessToken.uses_left > 0, InitialAccessToken.expires_at > utcnow()
        )
    return list(db.session.scalars(query))


def revoke_initial_token(*, actor: str, token_id: int) -> bool:
    """Withdraw an initial access token; False if there was none. Commits."""
    row = db.session.get(InitialAccessToken, token_id)
    if row is None:
        return False
    db.session.delete(row)
    audit.record("initial_access_token_revoked", actor=actor, token_id=token_id)
    return True


def _find_initial_token(token: str) -> InitialAccessToken | None:
    # Looked up by its keyed digest: the index sees digests only, and nobody
    # can aim a guess at a digest without the key.
    digest = idp().digester.digest(token, purpose=INITIAL_TOKEN_PURPOSE)
    row: InitialAccessToken | None = db.session.scalar(
        select(InitialAccessToken).where(InitialAccessToken.digest == digest)
    )
    if row is None or row.uses_left <= 0 or row.expires_at <= utcnow():
        return None
    return row


def _consume_initial_token(row: InitialAccessToken) -> bool:
    """Take one use in one conditional UPDATE: of concurrent registrations
    with the last use, exactly one gets it (STYLE.md 7). Part of the caller's
    transaction, so a registration that fails later gives the use back."""
    result = db.session.execute(
        sa.update(InitialAccessToken)
        .where(
            InitialAccessToken.id == row.id,
            InitialAccessToken.uses_left > 0,
            InitialAccessToken.expires_at > utcnow(),
        )
        .values(uses_left=InitialAccessToken.uses_left - 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def _bearer_token(authorization: str | None) -> str | None:
    """The bearer token of an Authorization header; None without one."""
    if not authorization:
        return None
    match = BEARER.fullmatch(authorization)
    if match is None:
        raise InvalidTokenError("Send the token as 'Authorization: Bearer <token>'.")
    return match.group(1)


# --- metadata ----------------------------------------------------------------------


def _metadata_error(exc: ClientError) -> OAuth2Error:
    return metadata_error(exc.field, exc.message)


def registration_client_uri(client: Client) -> str:
    return f"{idp().settings.issuer}/register/{quote(client.client_id, safe='')}"


def client_information(client: Client) -> dict[str, Any]:
    """RFC 7591 §3.2.1 / RFC 7592 §3: the client information response."""
    return metadata.client_information(client, registration_client_uri(client))


def _new_registration_token(client: Client) -> str:
    token = new_token(32)
    client.registration_token_digest = idp().digester.digest(
        token, purpose=REGISTRATION_TOKEN_PURPOSE
    )
    return token


# --- registration (RFC 7591 §3) ----------------------------------------------------


@dataclass(frozen=True)
class RegistrationGrant:
    """What allows a registration: an initial access token, or open
    registration (``initial_token`` None)."""

    initial_token: InitialAccessToken | None
    ip: str | None


def _open_registrations() -> Limit:
    settings = idp().settings
    return Limit("dcr-open", settings.client_registration_rate_limit, OPEN_REGISTRATION_WINDOW)


def verify_registration_request(*, authorization: str | None, ip: str | None) -> RegistrationGrant:
    """RFC 7591 §3: the initial access token (a bearer token), required unless
    open registration is on. A token sent with open registration on is still
    checked: a wrong one is an error, not ignored."""
    token = _bearer_token(authorization)
    if token is None:
        if not idp().settings.client_registration_open:
            raise MissingTokenError("An initial access token is required to register a client.")
        wait = retry_after(idp().store, _open_registrations(), ip) if ip else None
        if wait is not None:
            raise TooManyRegistrations(wait)
        return RegistrationGrant(initial_token=None, ip=ip)
    row = _find_initial_token(token)
    if row is None:
        log.warning("client registration with an unknown, expired or used-up initial token")
        raise InvalidTokenError("The initial access token is invalid, expired or used up.")
    return RegistrationGrant(initial_token=row, ip=ip)


def register(metadata: ClientMetadata, *, grant: RegistrationGrant) -> dict[str, Any]:
    """Register a client from its metadata; returns the RFC 7591 §3.2.1
    response body with the client secret (if any) and the registration access
    token, both in clear for this once."""
    reservation = None
    if grant.initial_token is None and grant.ip:
        # Open registration counts registrations per IP address, reserved
        # before the client is made, so concurrent requests cannot get past
        # the limit; a registration that fails gives its place back.
        try:
            reservation = reserve(idp().store, (_open_registrations(), grant.ip))
        except LimitReached as exc:
            raise TooManyRegistrations(exc.retry_after) from None
    try:
        client, secret, token = _register(metadata, grant=grant)
    except BaseException:
        if reservation is not None:
            reservation.give_back()
        raise
    body = client_information(client)
    if secret is not None:
        body["client_secret"] = secret
    body["registration_access_token"] = token
    return body


def _register(
    metadata: ClientMetadata, *, grant: RegistrationGrant
) -> tuple[Client, str | None, str]:
    try:
        # Never first-party, never skipping consent; PKCE required.
        client, secret = create_client(**metadata.client_fields(), dynamically_registered=True)
    except ClientError as exc:
        db.session.rollback()
        raise _metadata_error(exc) from None
    if grant.initial_token is not None and not _consume_initial_token(grant.initial_token):
        # Its last use went to a concurrent registration.
        db.session.rollback()
        raise InvalidTokenError("The initial access token is invalid, expired or used up.")
    token = _new_registration_token(client)
    audit.record(
        "client_registered",
        client_id=client.client_id,
        actor=ACTOR,
        initial_token=grant.initial_token.id if grant.initial_token else None,
    )
    return client, secret, token


# --- client configuration (RFC 7592) ----------------------------------------------


@dataclass(frozen=True)
class RegistrationAccess:
    """A configuration request whose registration access token matched."""

    client: Client
    token: str


def verify_registration_access(*, client_id: str, authorization: str | None) -> RegistrationAccess:
    """RFC 7592 §2: the registration access token of this very client. A
    missing or wrong token, another client's token and an unknown client all
    get 401 invalid_token (RFC 7592 §2.1, RFC 6750 §3.1)."""
    token = _bearer_token(authorization)
    if token is None:
        raise MissingTokenError("The registration access token is required.")
    client = get_client(client_id)
    digest = client.registration_token_digest if client is not None else None
    # Compared in constant time, and compared even without a client, so the
    # answer takes the same time either way.
    matches = idp().digester.matches(token, digest or "0" * 64, purpose=REGISTRATION_TOKEN_PURPOSE)
    if client is None or digest is None or not matches:
        log.warning("client configuration request with a wrong registration access token")
        raise InvalidTokenError("The registration access token is invalid for this client.")
    return RegistrationAccess(client=client, token=token)


def read(access: RegistrationAccess) -> dict[str, Any]:
    """RFC 7592 §2.1: the client information response. The registration
    access token is the one the request presented (we keep only its digest)."""
    return {**client_information(access.client), "registration_access_token": access.token}


def update(
    access: RegistrationAccess, envelope: ConfigurationUpdate, metadata: ClientMetadata
) -> dict[str, Any]:
    """RFC 7592 §2.2: replace the client's metadata with the request's; an
    omitted field takes its default. Fields only an administrator sets
    (require_mfa, lifetimes, disabled...) keep their values. Returns the
    client information with a new registration access token, and a client
    secret only when the update gave the client one."""
    client = access.client
    sent_secret = envelope.client_secret
    if sent_secret is not None and not (
        isinstance(sent_secret, str) and client.check_client_secret(sent_secret)
    ):
        # RFC 7592 §2.2: a client_secret sent MUST match the current one.
        raise InvalidRequestError("'client_secret' does not match the client's secret.")
    before = describe(client)
    try:
        secret = update_client(client, **metadata.client_fields())
    except ClientError as exc:
        db.session.rollback()
        raise _metadata_error(exc) from None
    after = describe(client)
    token = _new_registration_token(client)
    audit.record(
        "client_updated",
        client_id=client.client_id,
        actor=ACTOR,
        changed=sorted(k for k in after if after[k] != before[k]),
        secret_issued=secret is not None,
    )
    body = client_information(client)
    if secret is not None:
        body["client_secret"] = secret
    body["registration_access_token"] = token
    return body


def delete(access: RegistrationAccess) -> None:
    """RFC 7592 §2.3: the registration goes with its refresh tokens and
    consents; its secret, its registration access token and its access
    tokens stop working at once (idp.oidc.endpoints checks the client)."""
    client_id = access.client.client_id
    delete_client(access.client)
    audit.record("client_deleted", client_id=client_id, actor=ACTOR)
