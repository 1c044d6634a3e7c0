"""The device API's request and response bodies as pydantic models.

Every request body is parsed with these models at the edge (``idp.openapi``:
a body that does not fit answers ``invalid_request`` with ``fields``), every
response is written through them, and ``/device/v1/openapi.json`` is made from
the same models. Responses allow members beyond those declared: a client
ignores what it does not know (docs/device-api.md).

WebAuthn messages are the standard JSON serialisations and are checked by
``idp.webauthn``, not here: a credential or an assertion is any JSON object.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    field_validator,
)

from ..devices.models import DeviceKind, device_name
from ..devices.service import ActionPurpose, DeletionReason
from ..sessions.service import ConfirmationMethod

# A WebAuthn response as navigator.credentials returns it after toJSON().
Credential = Annotated[
    dict[str, JsonValue],
    Field(description="A WebAuthn response as navigator.credentials returns it (toJSON())."),
]
DeviceName = Annotated[
    str,
    AfterValidator(device_name),
    Field(description="1 to 100 characters; white space is collapsed."),
]
Time = Annotated[str, Field(description="ISO 8601, UTC: 2026-11-24T10:01:00Z")]


class Input(BaseModel):
    # Members a request carries beyond these are ignored, as they always were.
    model_config = ConfigDict(extra="ignore")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold NUL; refuse it as bad input, not a crash.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class Output(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_serialization_defaults_required=True)


# --- requests ------------------------------------------------------------------------


class NewEnrolment(Input):
    """Path A (``identifier`` and ``password``) or path B (``binding_code``)."""

    device_name: DeviceName
    kind: DeviceKind
    identifier: str | None = Field(
        default=None, description="Path A: access number, user name or e-mail."
    )
    password: str | None = Field(default=None, description="Path A.")
    binding_code: Annotated[str, Field(max_length=64)] | None = Field(
        default=None, description="Path B: the code from the account page."
    )


class EnrolmentCompletion(Input):
    credential: Credential
    confirmation_code: str | None = Field(default=None, description="Path A only.")


class ActionChallenge(Input):
    purpose: ActionPurpose


class SignedAction(Input):
    """A signed action (docs/device-api.md "Signed actions"). Without a nonce
    the answer is ``invalid_nonce``, without an assertion ``webauthn_failed``."""

    nonce: str | None = Field(default=None, description="From POST /actions/challenge.")
    assertion: Credential | None = None


class DeviceDeletion(SignedAction):
    reason: DeletionReason | None = Field(
        default=None, description="Why, as the person said; signed with the action where given."
    )
    sign_out: StrictBool | None = Field(
        default=None,
        description="Also end every login session the device confirmed (their refresh tokens "
        "are revoked, their apps get back-channel logout). Default: true for reason "
        '"lost_or_stolen", else false. Signed with the action where given.',
    )


class Rename(Input):
    name: DeviceName


class PushKeys(Input):
    p256dh: str
    auth: str


class PushSubscription(Input):
    """``PushSubscription.toJSON()``; checked further by idp.push
    (``invalid_subscription``)."""

    endpoint: str
    keys: PushKeys
    expirationTime: int | float | None = None


class ApprovalAnswer(Input):
    decision: Literal["approve", "deny"]
    code: Annotated[str, Field(max_length=16)] = Field(
        default="", description="approve: the number as typed; deny: empty."
    )
    fraud: StrictBool = Field(default=False, description="deny only: not made by the user.")
    assertion: Credential | None = None


class Activation(SignedAction):
    email: str | None = Field(
        default=None, description="Only for an account without an e-mail address."
    )


class ActivationCode(Input):
    code: str


class NewRestoration(Input):
    login_id: str
    code1: str
    device_name: DeviceName
    kind: DeviceKind


class RestorationCode(Input):
    code2: str


class RestorationCompletion(Input):
    credential: Credential


# --- responses -----------------------------------------------------------------------


class Device(Output):
    id: str
    name: str
    kind: str
    enrolled_via: str
    created_at: Time | None
    last_used_at: Time | None = Field(description="The last signed answer or action.")
    this_device: bool = Field(description="The calling device.")


class User(Output):
    sub: str
    access_number: str
    email: str | None


class Confirmation(Output):
    channel: Literal["sms", "email"]
    destination: str = Field(description="Masked.")


class EnrolmentStarted(Output):
    enrolment_id: str
    expires_in: int
    public_key: dict[str, JsonValue] = Field(description="PublicKeyCredentialCreationOptions.")
    confirmation: Confirmation | None = Field(default=None, description="Path A only.")


class Enrolled(Output):
    device: Device
    device_token: str = Field(description="Shown once; stored as a digest.")
    user: User
    vapid_public_key: str


class Status(Output):
    device: Device
    user: User


class Devices(Output):
    devices: list[Device]


class RenamedDevice(Output):
    device: Device


class ActionNonce(Output):
    nonce: str
    purpose: ActionPurpose
    expires_in: int


class DeletedDevice(Output):
    status: Literal["deleted"]
    device: Device
    remaining_devices: int
    signed_out: bool = Field(description="The sessions it confirmed were ended too.")


class SessionApp(Output):
    client_id: str
    name: str


class SessionConfirmation(Output):
    method: ConfirmationMethod = Field(
        description="The password alone, a device's approval, or a passkey."
    )
    id: str | None = Field(description="The device or passkey; null when deleted since.")
    name: str | None


class Session(Output):
    sid: str = Field(description="The session's id, as the apps know it (the ID token's sid).")
    browser: str | None = Field(
        description='In words, in the request\'s language: "Chrome on Linux".'
    )
    user_agent: str | None
    ip: str | None
    place: str | None = Field(description="Where a GeoIP database is configured: city, country.")
    started_at: Time
    last_active_at: Time = Field(description="To the minute.")
    confirmed_by: SessionConfirmation
    apps: list[SessionApp] = Field(description="The apps it signed in to.")


class Sessions(Output):
    sessions: list[Session]


class EndedSessions(Output):
    ended: int


class Notice(Output):
    """One notice; each type has its own members (docs/device-api.md "Notices")."""

    id: str
    type: str
    created_at: Time


class Notices(Output):
    notices: list[Notice]


class Approval(Output):
    id: str
    status: str
    client_name: str
    ip: str | None
    user_agent: str | None = Field(description="As the browser sent it (to show on demand).")
    browser: str | None = Field(
        description='The user agent in words, in the request\'s language: "Chrome on Linux".'
    )
    location: str | None = Field(
        description='Approximate place of a public IP address ("Berlin, Germany"), '
        "from the geoip_database setting; null without one."
    )
    created_at: Time
    expires_at: Time
    context: dict[str, JsonValue] = Field(description="Signed over with the answer.")


class Approvals(Output):
    approvals: list[Approval]


class Answered(Output):
    status: Literal["approved", "denied"]


class PendingDevice(Device):
    pending_until: Time | None


class RestorationStatus(Output):
    active: bool
    email_masked: str | None
    email_confirmed: bool
    activated_at: Time | None
    rotated_at: Time | None
    prompt_backup: bool = Field(description='Show "Back up your identity" now.')
    pending_devices: list[PendingDevice]


class Activated(Output):
    status: Literal["active"]
    restoration_code: str = Field(description="Code 1, in this answer only.")
    email_masked: str


class EmailConfirmationRequired(Output):
    status: Literal["email_confirmation_required"]
    activation_id: str
    email_masked: str
    expires_in: int


class RefusedDevice(Output):
    status: Literal["refused"]
    device: Device
    restoration_active: bool


class RestorationStarted(Output):
    restoration_id: str
    email_masked: str
    expires_in: int


class RestorationVerified(Output):
    restoration_id: str
    expires_in: int
    public_key: dict[str, JsonValue] = Field(description="PublicKeyCredentialCreationOptions.")


class Restored(Output):
    status: Literal["active", "pending"]
    pending_until: Time | None
    device: Device
    device_token: str = Field(description="Shown once; stored as a digest.")
    user: User
    vapid_public_key: str
    restoration_code: str = Field(description="The new code 1, in this answer only.")
