"""What an approval is: its record, its states and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from flask_babel import lazy_gettext as _l

from ..devices.models import Device
from ..errors import IdpError, InvalidRequest, Throttled

PENDING, APPROVED, DENIED, EXPIRED, CANCELLED = (
    "pending",
    "approved",
    "denied",
    "expired",
    "cancelled",
)
FINAL = frozenset({APPROVED, DENIED, EXPIRED, CANCELLED})
KEEP_AFTER_EXPIRY = 300  # the waiting page may still ask for a while


class ApprovalError(IdpError):
    error = "approval_error"
    status = 400


class ApprovalNotFound(ApprovalError):
    # Also for another user's approval: ids are not confirmed to strangers.
    error = "approval_not_found"
    status = 404
    message = _l("This approval request does not exist.")


class ApprovalExpired(ApprovalError):
    error = "approval_expired"
    status = 410
    message = _l("This approval request has expired.")


class ApprovalAlreadyAnswered(ApprovalError):
    error = "approval_already_answered"
    status = 409
    message = _l("This approval request has already been answered.")


class WrongMatchCode(ApprovalError):
    error = "wrong_code"
    message = _l("The number does not match the one shown in the browser.")


class TooManyWrongCodes(Throttled, ApprovalError):
    message = _l("Too many wrong numbers. Please wait before trying again.")


class PushesBlocked(Throttled, ApprovalError):
    error = "approvals_blocked"
    message = _l(
        "Sign-in confirmations for this account are paused for a while after a report "
        "of a sign-in attempt that was not made by you."
    )


class TooManyApprovals(Throttled, ApprovalError):
    error = "too_many_approvals"
    message = _l("Too many sign-in confirmations were not approved in the last minutes.")


class InvalidAnswer(InvalidRequest, ApprovalError):
    message = _l("The answer is not valid.")


@dataclass
class Approval:
    id: str
    user_id: int
    tx_id: str | None
    client_id: str
    client_name: str
    ip: str | None
    user_agent: str | None
    created_at: str
    expires_at: int  # epoch seconds
    code_digest: str
    status: str = PENDING
    device_id: str | None = None
    device_amr: str | None = None
    # The devices it was aimed at (the user's active devices when it was made):
    # only these may answer it. None in records made before this member existed.
    device_ids: list[str] | None = None
    # The limits it was counted in when it was made, each with the end of the
    # window it was counted in (epoch seconds): given back if it is approved
    # or withdrawn (idp.approvals.service). None in older records.
    counted: dict[str, int] | None = None

    def aimed_at(self, device: Device) -> bool:
        return device.user_id == self.user_id and (
            self.device_ids is None or device.id in self.device_ids
        )

    @property
    def context(self) -> dict[str, Any]:
        """What the device shows and signs (hashed into the challenge)."""
        return {
            "approval": self.id,
            "client_id": self.client_id,
            "client_name": self.client_name,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "created_at": self.created_at,
        }

    def expired(self, now: datetime) -> bool:
        return now.timestamp() >= self.expires_at

    def public(self, now: datetime) -> dict[str, Any]:
        status = EXPIRED if self.status == PENDING and self.expired(now) else self.status
        return {
            "id": self.id,
            "status": status,
            "client_name": self.client_name,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "created_at": self.created_at,
            "expires_at": iso(datetime.fromtimestamp(self.expires_at, UTC)),
            "context": self.context,
        }


@dataclass(frozen=True)
class StartedApproval:
    approval: Approval
    match_code: str
    devices: int


@dataclass(frozen=True)
class VerifiedAnswer:
    approval: Approval
    decision: Literal["approve", "deny"]
    fraud: bool
    sign_count_regressed: bool


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
