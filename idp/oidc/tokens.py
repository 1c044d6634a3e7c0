"""Tokens: authorization codes and access tokens in Redis, refresh tokens and
their families in SQL, and the one step that stores what a grant issued.

Authlib's defaults are not trusted on security (STYLE.md): refresh tokens
rotate with reuse detection (idp.oidc.grants), and authorization codes are
consumed atomically in Redis so two concurrent redemptions cannot both
succeed; a replayed code revokes everything issued from it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import InvalidGrantError, scope_to_list
from sqlalchemy import func, or_, select, update

from .. import audit
from ..accounts.models import User
from ..auth.models import SessionClient
from ..extensions import db, insert_ignore, upsert, utcnow
from ..state import idp as _idp
from ..store.kinds import Kind
from ..tokens import new_token
from .client_auth import query_client
from .models import ADMIN_SCOPE, Client, RefreshToken, TokenFamily

log = logging.getLogger(__name__)

# Replay markers outlive the code itself so a late replay still revokes.
CODE_REPLAY_WINDOW = 24 * 3600


def epoch(value: datetime) -> int:
    """Seconds since the epoch, as in JWT claims."""
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
        return not ACCESS_TOKENS.exists(self.digest)

    def get_user(self) -> User | None:
        return db.session.get(User, self.user_id) if self.user_id else None

    def get_client(self) -> Client | None:
        return query_client(self.client_id)


# The ephemeral token state, in Redis (idp.store.kinds).
ACCESS_TOKENS = Kind("at", AccessToken, ttl=lambda s: s.access_token_lifetime)
# A redeemed code's digest -> its token family (and who), for a replay's revocation.
USED_CODES = Kind("code-used", dict, ttl=lambda s: CODE_REPLAY_WINDOW)
# A family's access tokens: a Redis set, written by _ISSUE_ACCESS_TOKEN, which
# keeps it as long as the family's newest access token.
FAMILY_ACCESS_TOKENS = Kind("family-at", str, ttl=lambda s: s.access_token_lifetime)
# An authorization code's record under its digest; taken by _ISSUE_ACCESS_TOKEN.
CODES = Kind("code", AuthorizationCode, ttl=lambda s: s.authorization_code_lifetime)


def find_access_token(token: str) -> AccessToken | None:
    return ACCESS_TOKENS.get(_idp().digester.digest(token, purpose="access-token"))


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

    When a code's family has no row yet (a replay racing the code's
    redemption), it is made revoked: the redemption then finds it so
    (``client_id`` and ``user_id`` given). Otherwise as ``revoke_families``."""
    if client_id is not None and user_id is not None:
        now = utcnow()
        upsert(
            TokenFamily,
            {"id": family_id, "client_id": client_id, "user_id": user_id, "created_at": now,
             "revoked_at": now},
            key=["id"],
            update={"revoked_at": func.coalesce(TokenFamily.revoked_at, now)},
        )  # fmt: skip
    revoke_families([family_id], reason=reason)


def revoke_families(family_ids: Collection[str], *, reason: str) -> None:
    """Revoke every token issued from these authorizations, as one step.

    Each family row is written first (in id order, so that two revocations
    lock them in the same order), so a token being issued from a family at
    this moment is either committed before (and revoked here with the
    others) or finds the family revoked. Then their refresh tokens. Then one
    Redis script deletes the access tokens of them all, before the commit
    (the request's, which a refusal commits too): if Redis is down, nothing
    is revoked, not one family's access tokens without another's, and the
    request fails (the next reuse revokes)."""
    ids = sorted(set(family_ids))
    if not ids:
        return
    now = utcnow()
    for family_id in ids:
        db.session.execute(
            update(TokenFamily)
            .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id.in_(ids), RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    _idp().store.script(_REVOKE_ACCESS_TOKENS)(
        keys=[FAMILY_ACCESS_TOKENS.key(family_id) for family_id in ids],
        args=[ACCESS_TOKENS.key("")],
    )
    log.warning("token families revoked (%d): %s", len(ids), reason)


def on_sessions_revoking(
    sender: object, *, sids: list[str], reason: str, **extra: Any
) -> list[str]:
    """Receiver of ``idp.auth.sessions.sessions_revoking`` (connected in
    create_app): revoke every token family issued from these login sessions,
    in the transaction that ends them. A family names the sid its client was
    told; a session that replaced an earlier one of the same user (a step-up)
    holds that sid in its ``SessionClient`` rows. Returns the families revoked."""
    told = select(SessionClient.sid).where(SessionClient.session_id.in_(sids))
    families = list(
        db.session.scalars(
            select(TokenFamily.id)
            .where(
                or_(TokenFamily.sid.in_(sids), TokenFamily.sid.in_(told)),
                TokenFamily.revoked_at.is_(None),
            )
            .order_by(TokenFamily.id)
        )
    )
    revoke_families(families, reason=f"login session ended ({reason})")
    return families


def revoke_access_token(token: AccessToken) -> None:
    ACCESS_TOKENS.delete(token.digest)


# Deletes families' access tokens and their indexes. KEYS: the indexes;
# ARGV: the prefix of access token keys.
_REVOKE_ACCESS_TOKENS = """
for _, index in ipairs(KEYS) do
  for _, digest in ipairs(redis.call('SMEMBERS', index)) do
    redis.call('DEL', ARGV[1] .. digest)
  end
  redis.call('DEL', index)
end
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
        auth_time, amr, acr = epoch(old_refresh.auth_time), old_refresh.amr, old_refresh.acr
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
        ACCESS_TOKENS.put(record.digest, record, ttl=expires_in)
        return

    if isinstance(code, AuthorizationCode):
        # The family's row, made by this redemption: its insert holds the
        # family's lock until the commit, as lock_family's update would.
        at = utcnow()
        made = insert_ignore(
            TokenFamily,
            {"id": family_id, "client_id": client.client_id, "user_id": user.id, "sid": sid,
             "created_at": at, "last_used_at": at},
            key=["id"],
        )  # fmt: skip
        if not made and not lock_family(family_id, at):
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
    keys = [ACCESS_TOKENS.key(record.digest), FAMILY_ACCESS_TOKENS.key(family_id)]
    args: list[Any] = [ACCESS_TOKENS.dump(record), expires_in, record.digest]
    if isinstance(code, AuthorizationCode):
        keys += [CODES.key(code.digest), USED_CODES.key(code.digest)]
        marker = {"family": family_id, "client_id": client.client_id, "user_id": user.id}
        args += [json.dumps(marker), CODE_REPLAY_WINDOW]
    if not store.script(_ISSUE_ACCESS_TOKEN)(keys=keys, args=args):
        # A concurrent redemption of the same code won: this one is a replay.
        db.session.rollback()
        code_replayed(code.digest, client.client_id)
        raise InvalidGrantError()


def refresh_token_reused(row: RefreshToken) -> None:
    revoke_family(row.family_id, reason="refresh token reused")
    audit.record("refresh_token_reused", user_id=row.user_id, client_id=row.client_id)


def code_replayed(digest: str, client_id: str) -> None:
    """RFC 6749 §4.1.2 / RFC 9700 §4.5: a code used again revokes every
    token issued from it."""
    marker = USED_CODES.get(digest)
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
