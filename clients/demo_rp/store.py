"""An in-process store with expiry, for what must not travel in the cookie.

The Flask session is a signed, not encrypted, cookie: the browser can read it.
Tokens and the pending authorization requests (PKCE verifier, nonce) stay here,
and the cookie carries only random keys. One process only, which is what the
demo runs; a real relying party would use Redis or its database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class MemoryStore:
    """Also serves as Authlib's ``cache`` (``get``, ``set``, ``delete``)."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._max = max_entries
        self._clock = clock

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry[1] <= self._clock():
                del self._data[key]
                return None
            return entry[0]

    def set(self, key: str, value: str, expires_in: float) -> None:
        with self._lock:
            now = self._clock()
            self._data.pop(key, None)
            self._data[key] = (value, now + expires_in)
            if len(self._data) > self._max:
                for stale in [k for k, (_, exp) in self._data.items() if exp <= now]:
                    del self._data[stale]
                while len(self._data) > self._max:  # oldest first
                    del self._data[next(iter(self._data))]

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)
