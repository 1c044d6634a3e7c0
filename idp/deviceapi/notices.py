"""Notices about the account and the device's Web Push subscription;
docs/device-api.md "Notices" and "The device itself"."""

from __future__ import annotations

from .. import audit, clientinfo
from ..devices import notices, service
from ..state import idp
from . import schemas
from .base import api, current_device


@api.operation("GET", "/notices", tag="notices", response=schemas.Notices)
def list_notices() -> schemas.Notices:
    """Notices about the account, newest first (a restoration started, a device
    added or removed)."""
    found = notices.for_device(current_device())
    return schemas.Notices(
        notices=[
            schemas.Notice.model_validate(
                # The approximate place of its address, as approvals have it.
                {**n.public(), "location": clientinfo.approximate_place(n.data.get("ip"))}
            )
            for n in found
        ]
    )


@api.operation(
    "PUT",
    "/push-subscription",
    tag="notices",
    status=204,
    body=schemas.PushSubscription,
    description="An endpoint or keys that cannot be sent to answer invalid_subscription.",
)
def put_subscription(body: schemas.PushSubscription) -> None:
    """Set this device's Web Push subscription."""
    device = current_device()
    subscription = idp().push.parse_subscription(body.model_dump(exclude_none=True))
    service.set_push_subscription(device, subscription)
    audit.record("push_subscription_set", user_id=device.user_id, device=device.id)


@api.operation("DELETE", "/push-subscription", tag="notices", status=204)
def delete_subscription() -> None:
    """Drop this device's Web Push subscription."""
    service.set_push_subscription(current_device(), None)
