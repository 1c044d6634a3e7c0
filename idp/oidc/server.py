"""Authlib wiring: grants, client authentication, tokens and the OIDC extension.

Authlib's defaults are not trusted on security (STYLE.md): PKCE ``plain`` is
refused, refresh tokens rotate with reuse detection, and authorization codes
are consumed atomically in Redis so two concurrent redemptions cannot both
succeed; a replayed code revokes everything issued from it.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, cast

from authlib.integrations.flask_oauth2 import (
    AuthorizationServer as FlaskAuthorizationServer,
)
from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    grants,
    scope_to_list,
)
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import Flask
from flask import request as flask_request
from joserfc.jwk import KeySet
from sqlalchemy import func, select, update

from .. import audit
from ..accounts.models import User
from ..auth.sessions import remember_client
from ..extensions import db, insert_ignore, upsert, utcnow
from ..state import AUTHORIZATION_SERVER, RESOURCE_PROTECTOR
from ..state import idp as _idp
from ..tokens import new_token
from .models import ADMIN_SCOPE, Client, RefreshToken, TokenFamily

log = logging.getLogger(__name__)

CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
ALL_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]
# Replay markers outlive the code itself so a late replay still revokes.
CODE_REPLAY_WINDOW = 24 * 3600


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


# --- authorization codes (Redis) -----------------------------------------------


@dataclass
class AuthorizationCode:
    """What a code stands for; stored under its digest, never in clear."""

    client_id: str
    redirect_uri: str
    scope: str
    user_id: int
    family_id: str
    code_challenge: str
    code_challenge_method: str
    nonce: str | None = None
    sid: str | None = None
    auth_time: int = 0
    amr: list[str] = field(default_factory=list)
    acr: str | None = None
    # The code's digest (its key in Redis), set when it is looked up.
    digest: str = ""

    # authlib AuthorizationCodeMixin
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return self.acr

    def get_amr(self) -> list[str]:
        return self.amr


# --- access tokens (Redis) -------------------------------------------------------


@dataclass
class AccessToken:
    """An opaque bearer token's record, kept in Redis until it expires."""

    digest: str
    client_id: str
    scope: str
    issued_at: int
    expires_at: int
    user_id: int | None = None
    family_id: str | None = None
    sid: str | None = None

    # authlib TokenMixin
    def check_client(self, client: Client) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_at - self.issued_at

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return not _idp().store.exists("at", self.digest)

    def get_user(self) -> User | None:
        return db.session.get(User, self.user_id) if self.user_id else None

    def get_client(self) -> Client | None:
        return query_client(self.client_id)


def find_access_token(token: str) -> AccessToken | None:
    idp = _idp()
    digest = idp.digester.digest(token, purpose="access-token")
    data = idp.store.get("at", digest)
    return AccessToken(**data) if data else None


def find_refresh_token(token: str) -> RefreshToken | None:
    """The refresh token's row, unless it or its family is revoked."""
    digest = _idp().digester.digest(token, purpose="refresh-token")
    return db.session.scalar(
        select(RefreshToken)
        .join(TokenFamily, TokenFamily.id == RefreshToken.family_id)
        .where(
            RefreshToken.digest == digest,
            RefreshToken.revoked_at.is_(None),
            TokenFamily.revoked_at.is_(None),
        )
    )


def lock_family(family_id: str, now: datetime) -> bool:
    """Take the family's lock for this transaction (the row lock on
    PostgreSQL, the write lock on SQLite) if it is not revoked: every issue
    and every revocation of the family's tokens takes it first, so they
    happen one after the other, never interleaved."""
    result = db.session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
        .values(last_used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revoke_family(
    family_id: str,
    *,
    reason: str,
    client_id: str | None = None,
    user_id: int | None = None,
) -> None:
    """Revoke every token issued from one authorization (code + refreshes).

    The family row is written first, so a token being issued from the family
    at this moment is either committed before (and revoked here with the
    others) or finds the family revoked. When a code's family has no row yet
    (a replay racing the code's redemption), it is made revoked: the
    redemption then finds it so. Redis goes before the commit (the
    request's, which a refusal commits too): if it is down, nothing is
    revoked and the request fails (the next reuse revokes)."""
    idp = _idp()
    now = utcnow()
    if client_id is not None and user_id is not None:
        upsert(
            TokenFamily,
            {"id": family_id, "client_id": client_id, "user_id": user_id, "created_at": now,
             "revoked_at": now},
            key=["id"],
            update={"revoked_at": func.coalesce(TokenFamily.revoked_at, now)},
        )  # fmt: skip
    else:
        db.session.execute(
            update(TokenFamily)
            .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    idp.store.script(_REVOKE_ACCESS_TOKENS)(
        keys=[idp.store.key("family-at", family_id)], args=[idp.store.key("at", "")]
    )
    log.warning("token family revoked: %s", reason)


def revoke_access_token(token: AccessToken) -> None:
    _idp().store.delete("at", token.digest)


# Deletes a family's access tokens and its index. KEYS: the index; ARGV: the
# prefix of access token keys.
_REVOKE_ACCESS_TOKENS = """
for _, digest in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('DEL', ARGV[1] .. digest)
end
redis.call('DEL', KEYS[1])
return 0
"""

# Stores an access token and lists it in its family (whose index lives at
# least as long as the token). With a code: only if the code is still there,
# which it removes, leaving a marker for replays (single use, RFC 6749
# §4.1.2); returns 0 when a concurrent redemption took it.
# KEYS: access token, family index[, code, code-used]
# ARGV: token JSON, token TTL, digest[, marker JSON, marker TTL]
_ISSUE_ACCESS_TOKEN = """
if #KEYS == 4 then
  if redis.call('DEL', KEYS[3]) == 0 then
    return 0
  end
  redis.call('SET', KEYS[4], ARGV[4], 'EX', tonumber(ARGV[5]))
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
end
return 1
"""


# --- clients -----------------------------------------------------------------------


def query_client(client_id: str) -> Client | None:
    if not isinstance(client_id, str) or len(client_id) > 128:
        return None
    client: Client | None = db.session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None or client.disabled:
        return None
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
        return bool(_idp().store.add("jti", f"{claims['iss']}:{jti}", 1, ttl))

    def resolve_client_public_key(self, client: Client) -> KeySet:
        if not client.jwks:
            # jwks_uri fetching is left to the admin issue; registration
            # requires inline keys until then.
            raise InvalidClientError(description="The client has no registered keys.")
        return KeySet.import_key_set(cast(Any, client.jwks))


# --- token generation and storage ------------------------------------------------


def generate_bearer_token(
    grant_type: str,
    client: Client,
    user: User | None = None,
    scope: str | None = None,
    expires_in: int | None = None,
    include_refresh_token: bool = True,
) -> dict[str, Any]:
    settings = _idp().settings
    scope = granted_scope(client, user, scope)
    lifetime = expires_in or client.access_token_lifetime or settings.access_token_lifetime
    token: dict[str, Any] = {
        "token_type": "Bearer",
        "access_token": new_token(32),
        "expires_in": lifetime,
    }
    # OIDC Core §11: refresh tokens stand for offline access and are only
    # issued when that scope was granted to a client allowed to refresh.
    if (
        include_refresh_token
        and user is not None
        and "offline_access" in scope_to_list(scope)
        and client.check_grant_type("refresh_token")
    ):
        token["refresh_token"] = new_token(32)
    if scope:
        token["scope"] = scope
    return token


def granted_scope(client: Client, user: User | None, scope: str | None) -> str:
    """RFC 6749 §3.3: a token never carries a scope its client is not allowed,
    and, for a user, the admin scope only while that user is an administrator
    (a refresh after the role was revoked loses it)."""
    scopes = scope_to_list(client.get_allowed_scope(scope)) or []
    if user is not None and not user.is_admin:
        scopes = [s for s in scopes if s != ADMIN_SCOPE]
    return " ".join(scopes)


def save_token(token: dict[str, Any], request: OAuth2Request) -> None:
    """Store what was issued, as one step with the grant that issued it.

    For a code or a refresh token, the SQL side (the family's lock, the new
    refresh token) is flushed first, then one Redis script stores the access
    token (and, for a code, takes the code), then the transaction commits. If
    Redis fails, the transaction rolls back: nothing is consumed, and the
    client's retry succeeds (a failed request changes nothing)."""
    idp = _idp()
    client: Client = request.client
    now = int(time.time())
    code = request.authorization_code
    old_refresh = request.refresh_token
    user: User | None = request.user
    expires_in = int(token["expires_in"])
    family_id: str | None = None
    sid: str | None = None
    if isinstance(code, AuthorizationCode):
        family_id, sid, auth_time = code.family_id, code.sid, code.auth_time
        amr, acr = code.amr, code.acr
    elif isinstance(old_refresh, RefreshToken):
        family_id, sid = old_refresh.family_id, old_refresh.sid
        auth_time, amr, acr = _epoch(old_refresh.auth_time), old_refresh.amr, old_refresh.acr
    record = AccessToken(
        digest=idp.digester.digest(token["access_token"], purpose="access-token"),
        client_id=client.client_id,
        scope=token.get("scope", ""),
        issued_at=now,
        expires_at=now + expires_in,
        user_id=user.id if user is not None else None,
        family_id=family_id,
        sid=sid,
    )
    if family_id is None or user is None:  # client credentials: no user, no family
        idp.store.put("at", record.digest, asdict(record), ttl=expires_in)
        return

    if isinstance(code, AuthorizationCode):
        insert_ignore(
            TokenFamily,
            {"id": family_id, "client_id": client.client_id, "user_id": user.id, "sid": sid,
             "created_at": utcnow()},
            key=["id"],
        )  # fmt: skip
        if not lock_family(family_id, utcnow()):
            # A replay of this code was seen first and revoked the family.
            db.session.rollback()
            raise InvalidGrantError()
    # (A refresh took the family's lock in RefreshTokenGrant.create_token_response.)
    if "refresh_token" in token:
        lifetime = client.refresh_token_lifetime or idp.settings.refresh_token_lifetime
        db.session.add(
            RefreshToken(
                digest=idp.digester.digest(token["refresh_token"], purpose="refresh-token"),
                family_id=family_id,
                client_id=client.client_id,
                user_id=user.id,
                scope=token.get("scope", ""),
                sid=sid,
                auth_time=datetime.fromtimestamp(auth_time, UTC),
                amr=amr,
                acr=acr,
                expires_at=utcnow() + timedelta(seconds=lifetime),
            )
        )
    db.session.flush()

    store = idp.store
    keys = [store.key("at", record.digest), store.key("family-at", family_id)]
    args: list[Any] = [json.dumps(asdict(record)), expires_in, record.digest]
    if isinstance(code, AuthorizationCode):
        keys += [store.key("code", code.digest), store.key("code-used", code.digest)]
        marker = {"family": family_id, "client_id": client.client_id, "user_id": user.id}
        args += [json.dumps(marker), CODE_REPLAY_WINDOW]
    if not store.script(_ISSUE_ACCESS_TOKEN)(keys=keys, args=args):
        # A concurrent redemption of the same code won: this one is a replay.
        db.session.rollback()
        _code_replayed(code.digest, client.client_id)
        raise InvalidGrantError()


# --- grants --------------------------------------------------------------------------


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
            auth_time=_epoch(login.auth_time),
            amr=list(login.amr),
            acr=login.acr,
        )
        digest = idp.digester.digest(code, purpose="authorization-code")
        idp.store.put("code", digest, asdict(record), ttl=idp.settings.authorization_code_lifetime)
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
        data = idp.store.get("code", digest)
        if data is None:
            _code_replayed(digest, client.client_id)
            return None
        record = AuthorizationCode(**{k: v for k, v in data.items() if k != "digest"})
        record.digest = digest
        if record.client_id != client.client_id:
            audit.record("code_wrong_client", client_id=client.client_id)
            return None
        return record

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Taken atomically in save_token."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        user = db.session.get(User, authorization_code.user_id)
        return user if user is not None and user.is_active else None


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
            _refresh_token_reused(row)
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
            _refresh_token_reused(row)
            raise InvalidGrantError()
        return super().create_token_response()  # type: ignore[no-any-return]

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        """Consumed in create_token_response; its access tokens expire on their own."""


def _refresh_token_reused(row: RefreshToken) -> None:
    revoke_family(row.family_id, reason="refresh token reused")
    audit.record("refresh_token_reused", user_id=row.user_id, client_id=row.client_id)


def _code_replayed(digest: str, client_id: str) -> None:
    """RFC 6749 §4.1.2 / RFC 9700 §4.5: a code used again revokes every
    token issued from it."""
    marker = _idp().store.get("code-used", digest)
    if not marker:
        return
    if isinstance(marker, dict):  # {"family", "client_id", "user_id"}
        family_id = str(marker["family"])
        revoke_family(family_id, reason="authorization code replayed",
                      client_id=marker.get("client_id"), user_id=marker.get("user_id"))  # fmt: skip
    else:  # a marker written before families had rows: the family id alone
        family_id = str(marker)
        revoke_family(family_id, reason="authorization code replayed")
    audit.record("code_replayed", client_id=client_id, family=family_id)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        requested = set(scope_to_list(self.request.payload.scope) or [])
        # RFC 6749 §5.2 invalid_scope: a scope the client was not allowed (the
        # admin API's above all) is refused outright, not quietly dropped.
        if not requested <= set(self.request.client.allowed_scopes):
            raise InvalidScopeError()


def id_token_alg(client: Client) -> str:
    """The algorithm of the client's ID tokens (and Logout Tokens)."""
    return client.id_token_signed_response_alg or _idp().settings.default_signing_alg


class OpenIDConnect(OpenIDCode):
    """ID tokens: OIDC Core §2 claims plus ``sid`` and ``amr``/``acr``."""

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        # OIDC Core §15.5.2: nonce replay is detected by the relying party.
        return False

    def get_client_algorithm(self, client: Client) -> str:
        return id_token_alg(client)

    def resolve_client_private_key(self, client: Client) -> Any:
        return _idp().keyring.signing_key(self.get_client_algorithm(client)).key

    def get_encode_header(self, client: Client) -> dict[str, str]:
        key = _idp().keyring.signing_key(self.get_client_algorithm(client))
        return {"alg": key.alg, "kid": key.kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        settings = _idp().settings
        now = int(time.time())
        return {
            "iss": settings.issuer,
            "aud": [client.client_id],
            "iat": now,
            "exp": now + settings.id_token_lifetime,
        }

    def get_authorization_code_claims(self, authorization_code: Any) -> dict[str, Any]:
        claims = super().get_authorization_code_claims(authorization_code)
        if authorization_code.sid:
            claims["sid"] = authorization_code.sid
        return claims  # type: ignore[no-any-return]

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        return user_info(user, scope)


def user_info(user: User, scope: str) -> UserInfo:
    """OIDC Core §5.4: the claims each scope releases."""
    scopes = set(scope_to_list(scope) or [])
    info = UserInfo(sub=user.sub)
    if "profile" in scopes:
        info.update(
            name=user.name,
            given_name=user.given_name,
            family_name=user.family_name,
            preferred_username=user.username or user.access_number,
            locale=user.locale,
            updated_at=_epoch(user.updated_at),
        )
    if "email" in scopes and user.email:
        info.update(email=user.email, email_verified=user.email_verified)
    if "phone" in scopes and user.phone_number:
        info.update(
            phone_number=user.phone_number, phone_number_verified=user.phone_number_verified
        )
    return UserInfo({k: v for k, v in info.items() if v is not None})


# --- token endpoints ---------------------------------------------------------------


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
                "exp": _epoch(token.expires_at),
                "iat": _epoch(token.issued_at),
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
        import json

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
        from ..auth.sessions import end_login_session

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


class IdpAuthorizationServer(FlaskAuthorizationServer):
    """Accepts a prepared OAuth2Request, so a login transaction can resume the
    authorization request it stored."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)


def init_app(app: Flask) -> None:
    server = IdpAuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", generate_bearer_token)
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())
    server.register_grant(
        AuthorizationCodeGrant, [S256CodeChallenge(required=True), OpenIDConnect()]
    )
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    server.register_endpoint(EndSession)

    protector = ResourceProtector()
    protector.register_token_validator(AccessTokenValidator())

    app.extensions[AUTHORIZATION_SERVER] = server
    app.extensions[RESOURCE_PROTECTOR] = protector
