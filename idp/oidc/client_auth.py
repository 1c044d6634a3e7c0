"""Finding clients and authenticating them at the token endpoints."""

from __future__ import annotations

import time
from typing import Any, cast

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import g, has_request_context
from flask import request as flask_request
from joserfc.jwk import KeySet
from sqlalchemy import select

from ..extensions import detached_session
from ..state import idp as _idp
from ..store.kinds import Kind
from .models import Client

CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
ALL_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]

# private_key_jwt: the client assertions seen ("iss:jti"), each kept until it
# expires (the caller gives the TTL; at most an hour).
ASSERTION_IDS = Kind("jti", int, ttl=lambda s: 3600)


def query_client(client_id: str) -> Client | None:
    """The registration as the protocol endpoints read it (kept per process,
    idp.oidc.client_cache: never to be changed); None if unknown or disabled.

    Read once per request: an authorization asks for its client several
    times (Authlib's checks, the views), and each read checks the kept
    registration's stamp in Redis. One request sees one registration."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 128:
        return None
    read: dict[str, Client | None] | None = (
        g.setdefault("clients_read", {}) if has_request_context() else None
    )
    if read is not None and client_id in read:
        return read[client_id]
    client = _idp().clients.get(client_id, _load_client)
    if client is not None and client.disabled:
        client = None
    if read is not None:
        read[client_id] = client
    return client


def _load_client(client_id: str) -> Client | None:
    # A session of its own: the row is kept beyond this request, detached,
    # and must not take along the request's uncommitted changes.
    with detached_session() as session:
        client = session.scalar(select(Client).where(Client.client_id == client_id))
        if client is not None:
            session.expunge(client)
        return client


class PrivateKeyJWT(JWTBearerClientAssertion):
    """RFC 7523 §2.2 / OIDC Core §9 ``private_key_jwt``; each ``jti`` once."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self) -> list[str]:
        issuer = _idp().settings.issuer
        return [issuer, issuer + "/token", flask_request.base_url]

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        exp = int(claims.get("exp", 0))
        ttl = max(60, min(exp - int(time.time()) + self.leeway, 3600))
        return ASSERTION_IDS.add(f"{claims['iss']}:{jti}", 1, ttl=ttl)

    def resolve_client_public_key(self, client: Client) -> KeySet:
        if not client.jwks:
            # jwks_uri fetching is left to the admin issue; registration
            # requires inline keys until then.
            raise InvalidClientError(description="The client has no registered keys.")
        return KeySet.import_key_set(cast(Any, client.jwks))
