"""Web Push: the VAPID key pair and the sender. The only importer of pywebpush."""

from __future__ import annotations

from .keys import VapidKeyError, VapidKeyPair, VapidKeySource, VapidKeyStore
from .models import VapidKey
from .service import PushResult, PushService, load_sender, vapid_subject
from .subscriptions import InvalidSubscription, Subscription, parse_subscription

__all__ = [
    "InvalidSubscription",
    "PushResult",
    "PushService",
    "Subscription",
    "VapidKey",
    "VapidKeyError",
    "VapidKeyPair",
    "VapidKeySource",
    "VapidKeyStore",
    "load_sender",
    "parse_subscription",
    "vapid_subject",
]
