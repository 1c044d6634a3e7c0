"""The demo relying party's state in its Flask app (``app.extensions``)."""

from __future__ import annotations

from dataclasses import dataclass

from .oidc import Provider
from .settings import Settings
from .store import MemoryStore

EXTENSION = "demo_rp"


@dataclass(frozen=True)
class DemoRp:
    settings: Settings
    store: MemoryStore
    provider: Provider
