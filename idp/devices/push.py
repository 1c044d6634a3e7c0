"""Web Push to a user's devices, off the request thread.

A push carries only an opaque ``{"type": ..., "id": ...}`` (a new approval, a
notice); the device fetches the rest over the device API, and devices without
a subscription learn of it there (listing, or the event stream). A subscription
the push service reports gone is dropped from its device.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, current_app

from .. import audit
from ..extensions import commit, db
from .models import Device

log = logging.getLogger(__name__)

EXECUTOR_KEY = "idp.device_push_executor"


def init_app(app: Flask) -> None:
    app.extensions[EXECUTOR_KEY] = ThreadPoolExecutor(
        max_workers=4, thread_name_prefix="device-push"
    )


def push_to_devices(devices: list[Device], payload: dict[str, str], *, ttl: int) -> None:
    """Send ``payload`` to every device with a subscription, each in the background;
    ``ttl``: how long the push service keeps it for an offline device (RFC 8030 §5.2)."""
    targets = [(d.id, d.push_subscription) for d in devices if d.push_subscription]
    if not targets:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    executor: ThreadPoolExecutor = app.extensions[EXECUTOR_KEY]
    for device_id, subscription in targets:
        executor.submit(_send, app, device_id, subscription, payload, max(1, ttl))


def _send(
    app: Flask, device_id: str, subscription: dict[str, Any], payload: dict[str, str], ttl: int
) -> None:
    kind = payload.get("type")
    with app.app_context():
        try:
            result = app.extensions["idp"].push.send(subscription, payload, ttl=ttl, urgency="high")
            if result.gone:
                device = db.session.get(Device, device_id)
                if device is not None and device.push_subscription == subscription:
                    device.push_subscription = None
                    audit.record("push_subscription_dropped", user_id=device.user_id,
                                 device=device_id, status=result.status)  # fmt: skip
                    commit()  # this push is a unit of work of its own
            elif not result.delivered:
                log.warning("%s push for device %s not delivered (%s)", kind, device_id,
                            result.status)  # fmt: skip
        except Exception:
            log.exception("%s push for device %s failed", kind, device_id)
        finally:
            db.session.remove()
