"""Notices to a user's devices: "someone is restoring your ID", "a device was added".

Here in ``idp.devices`` so that every feature that tells the devices something
(restoration, device changes) can post one without importing another feature.

A notice is kept in Redis for ``NOTICE_LIFETIME`` (a list per user, newest
first, at most ``MAX_NOTICES``) and announced by Web Push with the opaque
payload ``{"type": "notice", "id": ...}``, as approvals are; the device then
reads ``GET /device/v1/notices``. Devices without a push subscription read the
list when the app opens. Every notice is also an audit event (the caller's),
so nothing is lost when it expires.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..state import idp
from ..tokens import new_token
from .push import push_to_devices

if TYPE_CHECKING:
    from .models import Device

log = logging.getLogger(__name__)

NOTICE_LIFETIME = 7 * 86400
MAX_NOTICES = 50
# A notice push waits this long for an offline device (RFC 8030 §5.2 TTL).
PUSH_TTL = 86400

# docs/device-api.md "Notices". A device added by restoration keeps the type it
# had before the other ways of adding one were told too.
RESTORE_STARTED = "restore_started"
DEVICE_ADDED = "device_added"
DEVICE_RESTORED = "device_restored"
DEVICE_REMOVED = "device_removed"


@dataclass(frozen=True)
class Notice:
    id: str
    type: str
    created_at: str  # ISO 8601, UTC, to the second
    at: float  # the same, to the microsecond (POSIX time), not shown
    data: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return {**self.data, "id": self.id, "type": self.type, "created_at": self.created_at}

    def about_device(self) -> str | None:
        device = self.data.get("device")
        return device.get("id") if isinstance(device, dict) else None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(user_id: int) -> str:
    return idp().store.key("notices", str(user_id))


def post(
    *,
    user_id: int,
    notice_type: str,
    data: dict[str, Any],
    devices: list[Device],
    now: datetime,
) -> Notice:
    """Keep a notice for the user's devices and push it to ``devices``."""
    notice = Notice(
        id=new_token(12), type=notice_type, created_at=_iso(now), at=now.timestamp(), data=data
    )
    record = json.dumps({**notice.public(), "at": notice.at})
    pipe = idp().store.redis.pipeline()  # MULTI/EXEC
    pipe.lpush(_key(user_id), record)
    pipe.ltrim(_key(user_id), 0, MAX_NOTICES - 1)
    pipe.expire(_key(user_id), NOTICE_LIFETIME)
    pipe.execute()
    push_to_devices(devices, {"type": "notice", "id": notice.id}, ttl=PUSH_TTL)
    return notice


def for_device(device: Device) -> list[Notice]:
    """The notices the device may see, newest first: those made since it was
    enrolled, except those about itself."""
    since = device.created_at.timestamp()
    found = []
    for raw in idp().store.redis.lrange(_key(device.user_id), 0, -1):
        data = json.loads(raw)
        notice = Notice(
            id=data.pop("id"),
            type=data.pop("type"),
            created_at=data.pop("created_at"),
            at=float(data.pop("at")),
            data=data,
        )
        if notice.at >= since and notice.about_device() != device.id:
            found.append(notice)
    return found
