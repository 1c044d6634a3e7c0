"""The admin JSON API's request and response bodies as pydantic models.

The API validates every request with these models and writes every response
through them, and the OpenAPI document (``idp.openapi``) is generated
from the same models, so the document and the code cannot drift apart.
Field names follow RFC 7591 where it has one (``client_name``, ``scope``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")

MAX_OFFSET = 10**9
MAX_LIFETIME = 400 * 86400


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it as bad input, not a crash.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _utc(value: datetime | None) -> datetime | None:
    """Times without a zone are UTC; others are converted to it."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


def _unchanged(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def unchanged(**constraints: Any) -> Any:
    """An update field that is left alone when absent (the document shows no
    default; ``model_fields_set`` tells what was sent)."""
    return Field(default=None, json_schema_extra=_unchanged, **constraints)


NoNul = AfterValidator(_no_nul)
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
Uri = Annotated[str, StringConstraints(min_length=1, max_length=500), NoNul]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128), NoNul]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]
Contact = Annotated[str, StringConstraints(min_length=1, max_length=254), NoNul]
SearchText = Annotated[str, StringConstraints(max_length=200), NoNul]
Utc = Annotated[datetime, AfterValidator(_utc)]
Lifetime = Annotated[int, Field(ge=60, le=MAX_LIFETIME)]
# As in idp.oidc.clients (which checks them again, with the rest).
AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
GrantType = Literal["authorization_code", "refresh_token", "client_credentials"]
MfaFallback = Literal["refuse", "password"]
SigningAlg = Literal["ES256", "RS256"]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET, description="Items to skip.")]
Limit = Annotated[int, Field(ge=1, le=500, description="Items per page (at most 500).")]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    # Every field is always present in a response, null where it has no value.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


# --- paging --------------------------------------------------------------------------


class PageQuery(Input):
    offset: Offset = 0
    limit: Limit = 50


class SearchQuery(PageQuery):
    q: SearchText | None = Field(default=None, description="Part of a name or identifier.")


class Page(Output, Generic[T]):
    items: list[T]
    total: int = Field(description="Items matching, on every page.")
    offset: int
    limit: int
    next_offset: int | None = Field(description="Where the next page starts; null on the last.")


# --- clients -------------------------------------------------------------------------


class Client(Output):
    """A client registration (never its secret, only whether it has one)."""

    client_id: str
    client_name: str
    logo_uri: str | None
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    token_endpoint_auth_method: str
    has_secret: bool
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    scope: str = Field(description="Allowed scopes, space separated.")
    contacts: list[str] = Field(default_factory=list)
    first_party: bool = Field(description="No consent screen.")
    require_pkce: bool
    require_mfa: bool = Field(description="Logins need a second factor.")
    mfa_fallback: str = Field(description="With require_mfa, for users without a device.")
    default_acr: str | None
    id_token_signed_response_alg: str | None
    access_token_lifetime: int | None = Field(description="Seconds; null: the default.")
    refresh_token_lifetime: int | None = Field(description="Seconds; null: the default.")
    backchannel_logout_uri: str | None = Field(
        description="OpenID Connect Back-Channel Logout: where Logout Tokens are posted "
        "when a session the client signed in to ends; null: none."
    )
    backchannel_logout_session_required: bool = Field(
        description="The client needs sid in Logout Tokens (Freigabe always sends it)."
    )
    dynamically_registered: bool = False
    disabled: bool
    created_at: datetime | None


class ClientWithSecret(Client):
    client_secret: str | None = Field(
        description="Shown only in this response and stored as a digest; null when the "
        "client has no (new) secret."
    )


class ClientSecret(Output):
    client_id: str
    client_secret: str = Field(description="Shown only now; the old secret no longer works.")


class ClientPage(Page[Client]):
    pass


class NewClient(Input):
    client_id: Identifier | None = Field(
        default=None, description="Default: random. Never another client's id nor a user's sub."
    )
    client_name: Name
    logo_uri: Uri | None = None
    redirect_uris: list[Uri] = Field(default_factory=list, max_length=50)
    post_logout_redirect_uris: list[Uri] = Field(default_factory=list, max_length=50)
    grant_types: list[GrantType] = Field(
        default=["authorization_code", "refresh_token"], min_length=1
    )
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"
    jwks: dict[str, Any] | None = Field(default=None, description="Public keys (private_key_jwt).")
    jwks_uri: Uri | None = None
    scope: SearchText | None = Field(
        default=None,
        description="Allowed scopes, space separated; default: every scope but admin.",
    )
    contacts: list[Contact] = Field(default_factory=list, max_length=10)
    first_party: bool = False
    require_pkce: bool = True
    require_mfa: bool = False
    mfa_fallback: MfaFallback = "refuse"
    default_acr: Identifier | None = None
    id_token_signed_response_alg: SigningAlg | None = None
    access_token_lifetime: Lifetime | None = None
    refresh_token_lifetime: Lifetime | None = None
    backchannel_logout_uri: Uri | None = Field(
        default=None, description="https (http only on loopback), no fragment."
    )
    backchannel_logout_session_required: bool = False


class ClientChanges(Input):
    """Only the fields sent change; null clears a field that may be empty."""

    client_name: Name = unchanged()
    logo_uri: Uri | None = unchanged()
    redirect_uris: list[Uri] = unchanged(max_length=50)
    post_logout_redirect_uris: list[Uri] = unchanged(max_length=50)
    grant_types: list[GrantType] = unchanged(min_length=1)
    token_endpoint_auth_method: AuthMethod = unchanged()
    jwks: dict[str, Any] | None = unchanged()
    jwks_uri: Uri | None = unchanged()
    scope: SearchText = unchanged()
    contacts: list[Contact] = unchanged(max_length=10)
    first_party: bool = unchanged()
    require_pkce: bool = unchanged()
    require_mfa: bool = unchanged()
    mfa_fallback: MfaFallback = unchanged()
    default_acr: Identifier | None = unchanged()
    id_token_signed_response_alg: SigningAlg | None = unchanged()
    access_token_lifetime: Lifetime | None = unchanged()
    refresh_token_lifetime: Lifetime | None = unchanged()
    backchannel_logout_uri: Uri | None = unchanged()
    backchannel_logout_session_required: bool = unchanged()


# --- users and devices ---------------------------------------------------------------


class User(Output):
    sub: str = Field(description="The user's ID in the API (and in ID tokens).")
    access_number: str
    username: str | None
    email: str | None
    email_verified: bool
    phone_number: str | None
    given_name: str | None
    family_name: str | None
    status: Literal["active", "locked"]
    is_admin: bool
    password_reset_required: bool
    created_at: datetime


class UserPage(Page[User]):
    pass


class Device(Output):
    id: str
    name: str
    kind: str
    enrolled_via: str
    created_at: datetime | None
    last_used_at: datetime | None


class DevicePage(Page[Device]):
    pass


class Passkey(Output):
    id: str
    name: str
    backup_eligible: bool = Field(description="May be synced to other devices.")
    created_at: datetime | None
    last_used_at: datetime | None


class Restoration(Output):
    active: bool
    activated_at: datetime | None


class AuditEvent(Output):
    id: int
    at: datetime
    type: str
    actor: str | None = Field(description="admin:ID, api:CLIENT_ID, cli, device:ID, user:ID")
    user: str | None = Field(description="The user's sub.")
    client_id: str | None
    device_id: str | None
    ip: str | None
    detail: dict[str, Any]


class UserDetails(User):
    devices: list[Device]
    passkeys: list[Passkey]
    restoration: Restoration
    recent_events: list[AuditEvent]


# --- keys ----------------------------------------------------------------------------


class SigningKey(Output):
    kid: str
    alg: str
    state: Literal["active", "retiring", "retired"]
    created_at: datetime | None
    retire_after: datetime | None = Field(description="Published until then (retiring keys).")


class SigningKeyPage(Page[SigningKey]):
    pass


class KeyRotation(Input):
    algs: list[SigningAlg] = Field(default=["ES256", "RS256"], min_length=1)


class RotatedKeys(Output):
    rotated: list[SigningKey] = Field(description="The new active keys.")


class RetiredKeys(Output):
    retired: int = Field(description="Keys no longer published.")


class VapidKey(Output):
    public_key: str = Field(description="The Web Push application server key (RFC 8292).")


# --- the audit log -------------------------------------------------------------------


class AuditFilter(Input):
    user: Identifier | None = Field(default=None, description="A user's sub.")
    client_id: Identifier | None = None
    type: list[EventType] = Field(
        default_factory=list, max_length=50, description="Event types (repeat for several)."
    )
    since: Utc | None = Field(default=None, description="From this time on (inclusive).")
    until: Utc | None = Field(default=None, description="Before this time.")


class AuditPageQuery(AuditFilter):
    offset: Offset = 0
    limit: Limit = 50


class AuditEventPage(Page[AuditEvent]):
    pass


class AuditTypes(Output):
    types: list[str] = Field(description="The event types that occur in the log.")
