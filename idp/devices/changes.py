"""Telling the user about every device added to or removed from the account.

Someone with the password and the phone (a swapped SIM) can add a device; a
stolen session or device can remove one. So every change is told, after its
transaction committed, to the account's e-mail address and, as a notice
(``idp.devices.notices``: kept for the devices, announced by Web Push), to
every other active device of the user: the device (name and kind), the time,
the IP address, and how (the enrolment path; for a removal who did it), with
the way to remove a device that was not the user's.

Connected in create_app to the signals of ``idp.devices.service``:
``device_added`` (paths A and B from ``complete``, restoration from
``idp.restore``) and ``device_revoked`` (the account page, the device API, a
refusal in the veto window, an administrator). The change stands whatever
happens here: a mail server or push service that does not answer is logged
(without the message) and the request goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from ..accounts.models import User
from ..extensions import db
from ..notify import DeliveryError
from . import notices
from .messages import (
    REMOVED_BY_ADMINISTRATOR,
    REMOVED_BY_DEVICE,
    REMOVED_ON_ACCOUNT_PAGE,
    send_device_added,
    send_device_removed,
)
from .models import Device, EnrolledVia
from .service import active_devices

log = logging.getLogger(__name__)


def on_device_added(sender: Flask, *, device: Device, ip: str | None = None, **extra: Any) -> None:
    """Receiver of ``device_added``: a device was enrolled (any path)."""
    restored = device.enrolled_via == EnrolledVia.RESTORATION
    _post(
        device,
        notices.DEVICE_RESTORED if restored else notices.DEVICE_ADDED,
        {
            "device": _about(device),
            "via": device.enrolled_via,
            "ip": ip,
            "pending_until": _iso(device.pending_until) if device.pending_until else None,
        },
        now=device.created_at,
    )
    user = db.session.get(User, device.user_id)
    if user is not None:
        _mail(device, lambda: send_device_added(user, device, ip=ip))


def on_device_revoked(
    sender: Flask,
    *,
    device: Device,
    now: datetime,
    actor: str = "",
    ip: str | None = None,
    refused: bool = False,
    **extra: Any,
) -> None:
    """Receiver of ``device_revoked``: a device was removed. ``actor`` is the
    audit log's (``user:ID`` on the account page, ``device:ID``, ``admin:ID``,
    ``api:CLIENT``, ``cli``)."""
    removed_by, by_device = _remover(actor)
    _post(
        device,
        notices.DEVICE_REMOVED,
        {
            "device": _about(device),
            "ip": ip,
            "removed_by": removed_by,
            "by_device": _about(by_device) if by_device is not None else None,
            "refused": refused,
        },
        now=now,
    )
    user = db.session.get(User, device.user_id)
    if user is not None:
        _mail(
            device,
            lambda: send_device_removed(
                user,
                device,
                at=now,
                ip=ip,
                removed_by=removed_by,
                by_device=by_device,
                refused=refused,
            ),
        )


def _remover(actor: str) -> tuple[str, Device | None]:
    """Who removed a device, from the audit log's actor."""
    kind, _, rest = actor.partition(":")
    if kind == "device":
        return REMOVED_BY_DEVICE, db.session.get(Device, rest)
    if kind == "user":
        return REMOVED_ON_ACCOUNT_PAGE, None
    return REMOVED_BY_ADMINISTRATOR, None  # admin:ID, api:CLIENT, cli


def _about(device: Device) -> dict[str, str]:
    return {"id": device.id, "name": device.name, "kind": device.kind}


def _post(device: Device, notice_type: str, data: dict[str, Any], *, now: datetime) -> None:
    """The notice, for every other active device (never the one it is about)."""
    others = [d for d in active_devices(device.user_id) if d.id != device.id]
    try:
        notices.post(
            user_id=device.user_id, notice_type=notice_type, data=data, devices=others, now=now
        )
    except Exception:
        log.warning("the %s notice about device %s was not posted", notice_type, device.id,
                    exc_info=True)  # fmt: skip


def _mail(device: Device, send: Callable[[], None]) -> None:
    try:
        send()
    except DeliveryError:
        # The sender logged why (without the message).
        log.warning("the e-mail about device %s was not sent", device.id)
    except Exception:
        log.warning("the e-mail about device %s was not sent", device.id, exc_info=True)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
