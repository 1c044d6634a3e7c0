"""An in-process store with expiry, for what must not travel in the cookie.

The Flask session is a signed, not encrypted, cookie: the browser can read it.
Tokens and the pending authorization requests (PKCE verifier, nonce) stay here,
and the cookie carries only random keys. One process only, which is what the
demo runs; a real relying party would use Redis or its database.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable


class MemoryStore:
    """Also serves as Authlib's ``cache`` (``get``, ``set``, ``delete``); ``add``
    and the member sets serve the back-channel logout (``jti`` seen once,
    sign-ins found by ``sid`` and ``sub``)."""

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
            self._set(key, value, expires_in)

    def add(self, key: str, value: str, expires_in: float) -> bool:
        """Set ``key`` only if it is not there (or has expired); True if it
        was set. One lock: of two concurrent adds, one wins."""
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and entry[1] > self._clock():
                return False
            self._set(key, value, expires_in)
            return True

    def add_member(self, key: str, member: str, expires_in: float) -> None:
        """Add ``member`` to the set at ``key``; the set lives ``expires_in``
        from now."""
        with self._lock:
            entry = self._data.get(key)
            members = json.loads(entry[0]) if entry and entry[1] > self._clock() else []
            if member not in members:
                members.append(member)
            self._set(key, json.dumps(members), expires_in)

    def pop_members(self, key: str) -> list[str]:
        """Take the whole set at ``key`` (empty if there is none)."""
        with self._lock:
            entry = self._data.pop(key, None)
            if entry is None or entry[1] <= self._clock():
                return []
            return list(json.loads(entry[0]))

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def _set(self, key: str, value: str, expires_in: float) -> None:
        now = self._clock()
        self._data.pop(key, None)
        self._data[key] = (value, now + expires_in)
        if len(self._data) > self._max:
            for stale in [k for k, (_, exp) in self._data.items() if exp <= now]:
                del self._data[stale]
            while len(self._data) > self._max:  # oldest first
                del self._data[next(iter(self._data))]
