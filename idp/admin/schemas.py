"""The admin JSON API's request and response bodies as pydantic models.

The API validates every request with these models and writes every response
through them, and the OpenAPI document (``idp.openapi``) is generated
from the same models, so the document and the code cannot drift apart.
Field names follow RFC 7591 where it has one (``client_name``, ``scope``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, create_model

from ..oidc.fields import (
    FIELDS as CLIENT_FIELDS,
)
from ..oidc.fields import (
    ClientField,
    Identifier,
    NoNul,
    SearchText,
    SigningAlg,
)

T = TypeVar("T")

MAX_OFFSET = 10**9


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


EventType = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]
Utc = Annotated[datetime, AfterValidator(_utc)]
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


def _output_type(field: ClientField) -> Any:
    """A client field's type in responses."""
    if field.joined:
        return str
    if field.is_list:
        return list[str]
    return {
        "text": str,
        "flag": bool,
        "choice": str,
        "seconds": int | None,
        "json": dict[str, Any] | None,
    }.get(field.kind, str | None)


def _may_be_null(field: ClientField) -> bool:
    """null clears the field (in a change; a new client's default is null)."""
    return field.kind in ("uri", "option", "seconds", "json")


def _new_field(field: ClientField) -> tuple[Any, Any]:
    """A client field in a new registration: its default when omitted."""
    doc = field.api_doc
    if field.required:
        return field.api_type, Field(description=doc)
    if field.joined or _may_be_null(field):
        return field.api_type | None, Field(default=None, description=doc)
    return field.api_type, Field(default=field.new_default(), description=doc)


def _change_field(field: ClientField) -> tuple[Any, Any]:
    """A client field in a change: left alone when absent."""
    kind = field.api_type | None if _may_be_null(field) else field.api_type
    return kind, Field(default=None, json_schema_extra=_unchanged, description=field.api_doc)


_CLIENT: dict[str, Any] = {
    "client_id": (str, ...),
    **{f.key: (_output_type(f), Field(description=f.api_doc)) for f in CLIENT_FIELDS},
    "has_secret": (bool, ...),
    "dynamically_registered": (bool, False),
    "disabled": (bool, ...),
    "created_at": (datetime | None, ...),
}
_NEW_CLIENT: dict[str, Any] = {
    "client_id": (
        Identifier | None,
        Field(
            default=None,
            description="Default: random. Never another client's id nor a user's sub.",
        ),
    ),
    **{f.key: _new_field(f) for f in CLIENT_FIELDS},
}
_CLIENT_CHANGES: dict[str, Any] = {f.key: _change_field(f) for f in CLIENT_FIELDS}

# The client models come from the declaration of a client's fields
# (idp.oidc.fields); type checkers see their common shape.
if TYPE_CHECKING:

    class Client(Output):
        client_id: str

    class NewClient(Input):
        client_id: str | None

    class ClientChanges(Input):
        pass

else:
    Client = create_model(
        "Client",
        __base__=Output,
        __doc__="A client registration (never its secret, only whether it has one).",
        **_CLIENT,
    )
    NewClient = create_model("NewClient", __base__=Input, **_NEW_CLIENT)
    ClientChanges = create_model(
        "ClientChanges",
        __base__=Input,
        __doc__="Only the fields sent change; null clears a field that may be empty.",
        **_CLIENT_CHANGES,
    )


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


class ConnectedApp(Output):
    client_id: str
    name: str
    scopes: list[str] = Field(description="The scopes the user consented to.")
    granted_at: datetime = Field(description="When the user last gave it access.")
    last_used_at: datetime | None = Field(
        description="The last token issued to it for this user (a code redeemed, a refresh)."
    )
    offline_access: bool = Field(description="It holds a live refresh token for this user.")


class ConnectedAppPage(Page[ConnectedApp]):
    pass


class DeviceRemoval(Input):
    reason: Literal["lost_or_stolen", "no_longer_used"] | None = Field(
        default=None, description="Why, as the user said (kept in the audit log)."
    )
    sign_out: bool | None = Field(
        default=None,
        description="Also end every login session the device confirmed (refresh tokens revoked, "
        'back-channel logout to their apps). Default: true for reason "lost_or_stolen".',
    )


class SessionApp(Output):
    client_id: str
    name: str


class SessionConfirmation(Output):
    method: Literal["password", "device", "passkey"]
    id: str | None = Field(description="The device or passkey; null when deleted since.")
    name: str | None


class Session(Output):
    sid: str = Field(description="As the apps know it (the ID token's sid).")
    browser: str | None = Field(description='In words: "Chrome on Linux".')
    user_agent: str | None
    ip: str | None
    place: str | None = Field(description="Where a GeoIP database is configured.")
    started_at: datetime
    last_active_at: datetime
    confirmed_by: SessionConfirmation
    apps: list[SessionApp] = Field(description="The apps it signed in to.")


class SessionPage(Page[Session]):
    pass


class EndedSessions(Output):
    ended: int


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
