"""Web Push delivery of new approvals, off the request thread.

The push carries only ``{"type": "approval", "id": ...}``; the device fetches
the rest over the device API. Devices without a subscription learn of the
approval through the device API (listing or the SSE stream).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from ..devices.models import Device
    from .service import Approval

log = logging.getLogger(__name__)

EXECUTOR_KEY = "idp.push_executor"


def init_app(app: Flask) -> None:
    app.extensions[EXECUTOR_KEY] = ThreadPoolExecutor(
        max_workers=4, thread_name_prefix="approval-push"
    )


def push_to_devices(approval: Approval, devices: list[Device]) -> None:
    targets = [(d.id, d.push_subscription) for d in devices if d.push_subscription]
    if not targets:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    executor: ThreadPoolExecutor = app.extensions[EXECUTOR_KEY]
    lifetime = max(1, approval.expires_at - _now_epoch())
    for device_id, subscription in targets:
        executor.submit(_send, app, device_id, subscription, approval.id, lifetime)


def _now_epoch() -> int:
    import time

    return int(time.time())


def _send(app: Flask, device_id: str, subscription: dict, approval_id: str, ttl: int) -> None:  # type: ignore[type-arg]
    from .. import audit
    from ..devices.models import Device
    from ..extensions import db

    with app.app_context():
        try:
            result = app.extensions["idp"].push.send(
                subscription, {"type": "approval", "id": approval_id}, ttl=ttl, urgency="high"
            )
            if result.gone:
                device = db.session.get(Device, device_id)
                if device is not None and device.push_subscription == subscription:
                    device.push_subscription = None
                    audit.record("push_subscription_dropped", user_id=device.user_id,
                                 device=device_id, status=result.status)  # fmt: skip
            elif not result.delivered:
                log.warning("push for device %s not delivered (%s)", device_id, result.status)
        except Exception:
            log.exception("push for device %s failed", device_id)
        finally:
            db.session.remove()
