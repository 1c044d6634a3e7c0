"""The grants: authorization code with PKCE S256 only, refresh token with
rotation and reuse detection, client credentials."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, ClassVar

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    grants,
    scope_to_list,
)
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge
from sqlalchemy import select, update

from .. import audit
from ..accounts.models import User
from ..auth.sessions import remember_client
from ..extensions import db, utcnow
from ..state import idp as _idp
from ..tokens import new_token
from .client_auth import ALL_AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from .models import ADMIN_SCOPE, Client, Consent, RefreshToken
from .tokens import (
    CODES,
    AuthorizationCode,
    code_replayed,
    epoch,
    find_refresh_token,
    lock_family,
    refresh_token_reused,
)


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only (RFC 9700 §2.1.1); required for public clients and,
    by default, for every client."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    CODE_CHALLENGE_METHODS: ClassVar[dict[str, Callable[[str, str], bool]]] = {
        "S256": lambda verifier, challenge: hmac.compare_digest(
            create_s256_code_challenge(verifier), challenge
        )
    }

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        request = grant.request
        client: Client = request.client
        challenge = request.payload.data.get("code_challenge")
        method = request.payload.data.get("code_challenge_method")
        if not challenge and (client.is_public or client.require_pkce):
            # RFC 9700 §2.1.1: PKCE is required for public clients; we require
            # it for every client registered with require_pkce (the default).
            raise InvalidRequestError("Missing 'code_challenge'.", redirect_uri=redirect_uri)
        if challenge and method != "S256":
            # RFC 7636 §4.3: a missing method means "plain", which we refuse.
            raise InvalidRequestError(
                "Only 'code_challenge_method=S256' is supported.", redirect_uri=redirect_uri
            )
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        idp = _idp()
        login = request.login_session
        data = request.payload.data
        scope = scope_to_list(request.scope) or []
        if ADMIN_SCOPE in scope and not (request.user.is_admin and "mfa" in login.amr):
            # The admin scope stands for the admin area, which asks for an
            # administrator signed in with a second factor (issue 6).
            scope = [s for s in scope if s != ADMIN_SCOPE]
        record = AuthorizationCode(
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=" ".join(scope),
            user_id=request.user.id,
            family_id=new_token(16),
            code_challenge=data.get("code_challenge") or "",
            code_challenge_method=data.get("code_challenge_method") or "",
            nonce=data.get("nonce"),
            sid=login.id,
            auth_time=epoch(login.auth_time),
            amr=list(login.amr),
            acr=login.acr,
        )
        digest = idp.digester.digest(code, purpose="authorization-code")
        CODES.put(digest, record)
        # Back-Channel Logout §2.3: this session has signed the client in
        # (committed with the authorization_code_issued audit event).
        remember_client(login, request.client.client_id)

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        """The code's record, read only: it is taken in ``save_token``, in
        the same step that stores the access token, so a request that fails
        before (a wrong verifier, an outage) leaves it for the client's retry."""
        idp = _idp()
        if not isinstance(code, str) or len(code) > 256:
            return None
        digest = idp.digester.digest(code, purpose="authorization-code")
        record = CODES.get(digest)
        if record is None:
            code_replayed(digest, client.client_id)
            return None
        record.digest = digest
        if record.client_id != client.client_id:
            audit.record("code_wrong_client", client_id=client.client_id)
            return None
        return record

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Taken atomically in save_token."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        user = db.session.get(User, authorization_code.user_id)
        if user is None or not user.is_active:
            return None
        client: Client = self.request.client
        if not client.first_party and not _consented(user.id, client.client_id):
            # The user removed the app's access after this code was issued
            # (idp.oidc.connected_apps): nothing is issued on it any more. The
            # consent's row is locked until this redemption commits, so a
            # removal at the same moment waits and then revokes its tokens.
            return None
        return user


def _consented(user_id: int, client_id: str) -> bool:
    return (
        db.session.scalar(
            select(Consent.id)
            .where(Consent.user_id == user_id, Consent.client_id == client_id)
            .with_for_update()
        )
        is not None
    )


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    # RFC 9700 §4.14.2: rotate refresh tokens.
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        if not isinstance(refresh_token, str) or len(refresh_token) > 256:
            return None
        row = find_refresh_token(refresh_token)
        if row is None:
            return None
        if row.consumed_at is not None:
            # RFC 9700 §4.14.2: a rotated token used again means one of two
            # parties holds a stolen copy; revoke the whole family.
            refresh_token_reused(row)
            return None
        if row.expires_at <= utcnow():
            return None
        return row

    def authenticate_user(self, refresh_token: RefreshToken) -> User | None:
        user = db.session.get(User, refresh_token.user_id)
        return user if user is not None and user.is_active else None

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Rotation and reuse detection as one step: under the family's lock
        (``lock_family``) the old token is consumed, the new one written and
        and the request's transaction commits (``save_token`` stores the
        access token before); a concurrent refresh
        with the same token waits for the lock, then finds it consumed and
        revokes the family, the new token with it."""
        row: RefreshToken = self.request.refresh_token
        now = utcnow()
        if not lock_family(row.family_id, now):
            db.session.rollback()
            raise InvalidGrantError()  # revoked meanwhile
        consumed = db.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == row.id,
                RefreshToken.consumed_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(consumed_at=now)
        )
        if consumed.rowcount != 1:  # type: ignore[attr-defined]
            # Another refresh with this token got the lock first: a reuse.
            db.session.rollback()
            refresh_token_reused(row)
            raise InvalidGrantError()
        return super().create_token_response()  # type: ignore[no-any-return]

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        """Consumed in create_token_response; its access tokens expire on their own."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        requested = set(scope_to_list(self.request.payload.scope) or [])
        # RFC 6749 §5.2 invalid_scope: a scope the client was not allowed (the
        # admin API's above all) is refused outright, not quietly dropped.
        if not requested <= set(self.request.client.allowed_scopes):
            raise InvalidScopeError()
