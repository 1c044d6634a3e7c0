"""The device API (``/device/v1``), JSON; see docs/device-api.md.

One blueprint (``device_api``, ``base.bp``) for the whole protocol between the
IdP and a user's device, one module per area; each calls the services of
``idp.devices``, ``idp.approvals`` and ``idp.restore``.
"""

from __future__ import annotations

from . import approvals, devices, enrolment, notices, restoration, sessions
from .base import PREFIX, bp

__all__ = [
    "PREFIX",
    "approvals",
    "bp",
    "devices",
    "enrolment",
    "notices",
    "restoration",
    "sessions",
]
