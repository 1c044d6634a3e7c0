"""Client registrations, initial access tokens, token families and refresh
tokens, consents and signing keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, scope_to_list
from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import UTCDateTime, db, utcnow
from ..state import idp

SUPPORTED_SCOPES = ("openid", "profile", "email", "phone", "offline_access")
# The admin JSON API (idp.admin.api): never a default, never advertised, and
# only on registrations an administrator made (idp.oidc.clients.validate);
# with a user, only for an administrator after an MFA login (idp.oidc.grants).
ADMIN_SCOPE = "admin"


class Client(db.Model, ClientMixin):  # type: ignore[name-defined]
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), unique=True)
    # Keyed SHA-256 digest (idp.tokens); the secret itself is shown once.
    client_secret_digest: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    logo_uri: Mapped[str | None] = mapped_column(String(500))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40))
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    jwks_uri: Mapped[str | None] = mapped_column(String(500))
    allowed_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_party: Mapped[bool] = mapped_column(default=False)
    require_pkce: Mapped[bool] = mapped_column(default=True)
    require_mfa: Mapped[bool] = mapped_column(default=False)
    # When MFA is required but the user has no device: "refuse" with a page
    # that offers enrolment, or "password" (password only, acr says so).
    mfa_fallback: Mapped[str] = mapped_column(String(16), default="refuse")
    default_acr: Mapped[str | None] = mapped_column(String(128))
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(10))
    # RFC 7591 §2: ways to reach the people responsible for the client.
    contacts: Mapped[list[str]] = mapped_column(JSON, default=list)
    # OpenID Connect Back-Channel Logout 1.0 §2.2: where the client takes a
    # Logout Token when a login session it signed in to ends, and whether it
    # needs the token's sid (idp.oidc.backchannel; we always send it).
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    backchannel_logout_session_required: Mapped[bool] = mapped_column(default=False)
    access_token_lifetime: Mapped[int | None]
    refresh_token_lifetime: Mapped[int | None]
    disabled: Mapped[bool] = mapped_column(default=False)
    # Registered through the RFC 7591 endpoint (idp.oidc.registration): never
    # first-party. The registration access token (RFC 7592 §3) is kept as a
    # keyed digest; the token itself is shown once.
    dynamically_registered: Mapped[bool] = mapped_column(default=False)
    registration_token_digest: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # --- authlib ClientMixin -------------------------------------------------
    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OIDC Core §3.1.2.1: redirect_uri is required; never guess one.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        allowed = set(self.allowed_scopes)
        return " ".join(s for s in scope_to_list(scope) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 9700 §4.1.1: exact string match against the registration.
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        # Keyed digest compared in constant time (idp.tokens).
        if not self.client_secret_digest:
            return False
        return idp().digester.matches(
            client_secret, self.client_secret_digest, purpose="client-secret"
        )

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": list(self.post_logout_redirect_uris or [])}

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == self.token_endpoint_auth_method
        # revocation / introspection: the same method as the token endpoint.
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class InitialAccessToken(db.Model):  # type: ignore[name-defined]
    """RFC 7591 §3: a bearer token an administrator hands out so that a
    client may register itself. Stored as a keyed digest; good for
    ``uses_left`` registrations until ``expires_at``."""

    __tablename__ = "initial_access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    uses: Mapped[int]
    uses_left: Mapped[int]
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Who issued it ("cli", an administrator's name later).
    created_by: Mapped[str | None] = mapped_column(String(128))


class TokenFamily(db.Model):  # type: ignore[name-defined]
    """Every token issued from one authorization (its code, the refresh tokens
    rotated from it and their access tokens).

    The row is what serialises a family: issuing a token of the family first
    updates it (a row lock on PostgreSQL, the write lock on SQLite) on the
    condition that it is not revoked, and revoking it updates it first too.
    So once a family is revoked no token of it works, including one being
    issued at that moment (RFC 9700 §4.14.2)."""

    __tablename__ = "token_families"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    # Indexed for the purge (idp.housekeeping), which needs families created
    # (and so last used) long ago. Not ``last_used_at``: every refresh updates
    # it, and an indexed column would make each such UPDATE write every index
    # (on PostgreSQL no longer a heap-only update, leaving dead index entries).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # The last token issued from it (a code redeemed, a refresh).
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RefreshToken(db.Model):  # type: ignore[name-defined]
    """One refresh token of a rotation family (all tokens from one authorization)."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(
        ForeignKey("token_families.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(Text)
    sid: Mapped[str | None] = mapped_column(String(64))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime())
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(128))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Indexed for the purge (idp.housekeeping).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # authlib TokenMixin
    def check_client(self, client: Client) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return self.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None or self.consumed_at is not None


class Consent(db.Model):  # type: ignore[name-defined]
    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("user_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KeyState:
    ACTIVE = "active"
    RETIRING = "retiring"
    RETIRED = "retired"


class SigningKey(db.Model):  # type: ignore[name-defined]
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    # AES-256-GCM under a subkey of the configured key encryption key.
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default=KeyState.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Published until then, so tokens it signed can still be verified.
    retire_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
