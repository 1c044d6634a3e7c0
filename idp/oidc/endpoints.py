"""Token revocation (RFC 7009), introspection (RFC 7662), RP-initiated
logout, and the bearer token validator of the resource protector."""

from __future__ import annotations

import json
from typing import Any

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint
from joserfc.jwk import KeySet

from .. import audit
from ..accounts.models import User
from ..auth.sessions import end_login_session
from ..extensions import db
from ..state import idp as _idp
from .client_auth import ALL_AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS, query_client
from .models import Client, RefreshToken
from .tokens import (
    AccessToken,
    epoch,
    find_access_token,
    find_refresh_token,
    revoke_access_token,
    revoke_family,
)


def _query_any_token(token: str, hint: str | None) -> AccessToken | RefreshToken | None:
    if hint != "refresh_token":
        found = find_access_token(token)
        if found is not None:
            return found
    return find_refresh_token(token)


class Revocation(RevocationEndpoint):
    """RFC 7009; public clients may revoke their own tokens (§5)."""

    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _query_any_token(token_string, token_type_hint)

    def revoke_token(self, token: Any, request: OAuth2Request) -> None:
        if isinstance(token, RefreshToken):
            # RFC 7009 §2.1: revoking a refresh token also invalidates the
            # access tokens of the same grant.
            revoke_family(token.family_id, reason="refresh token revoked by client")
        else:
            revoke_access_token(token)
        audit.record("token_revoked", client_id=request.client.client_id)


class Introspection(IntrospectionEndpoint):
    """RFC 7662 for authenticated clients, about their own tokens."""

    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        token = _query_any_token(token_string, token_type_hint)
        if isinstance(token, RefreshToken):
            user = db.session.get(User, token.user_id)
        else:
            user = token.get_user() if token is not None else None
        if token is not None and user is not None and not user.is_active:
            return None  # RFC 7662 §2.2: a locked user's token is not active
        return token

    def check_permission(self, token: Any, client: Client, request: OAuth2Request) -> bool:
        return bool(token.check_client(client))

    def introspect_token(self, token: Any) -> dict[str, Any]:
        settings = _idp().settings
        if isinstance(token, RefreshToken):
            user = db.session.get(User, token.user_id)
            payload = {
                "scope": token.scope,
                "client_id": token.client_id,
                "token_type": "refresh_token",
                "exp": epoch(token.expires_at),
                "iat": epoch(token.issued_at),
                "sub": user.sub if user else None,
            }
        else:
            user = token.get_user()
            payload = {
                "scope": token.scope,
                "client_id": token.client_id,
                "token_type": "Bearer",
                "exp": token.expires_at,
                "iat": token.issued_at,
                "sub": user.sub if user else None,
            }
        payload["iss"] = settings.issuer
        if user is not None:
            payload["username"] = user.username or user.access_number
        return {k: v for k, v in payload.items() if v is not None}


class EndSession(EndSessionEndpoint):
    """OIDC RP-Initiated Logout 1.0."""

    def get_server_jwks(self) -> KeySet:
        return KeySet.import_key_set(json.loads(_idp().keyring.jwks_bytes()))

    def resolve_client_from_id_token_claims(self, id_token_claims: dict[str, Any]) -> Any:
        # Our ID tokens carry aud as a one-element list (OIDC Core §2); azp
        # names the client when there could be several.
        aud = id_token_claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else list(aud or [])
        client_id = id_token_claims.get("azp") or (audiences[0] if len(audiences) == 1 else None)
        if client_id is None or client_id not in audiences:
            return None
        return self.server.query_client(client_id)

    def _is_valid_post_logout_redirect_uri(self, client: Client, uri: str) -> bool:
        # RP-Initiated Logout §3: exact match with a registered URI.
        return uri in (client.post_logout_redirect_uris or [])

    def end_session(self, end_session_request: Any) -> None:
        end_login_session(reason="rp_initiated_logout")


# --- resource protection ------------------------------------------------------------


class AccessTokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> AccessToken | None:
        token = find_access_token(token_string)
        if token is None or query_client(token.client_id) is None:
            # A deleted (or disabled) client's access tokens stop working at
            # once, not when they expire.
            return None
        return token
