"""Failure counters in fixed windows, shared by every instance through Redis."""

from __future__ import annotations

from dataclasses import dataclass

from . import Store


@dataclass(frozen=True)
class Limit:
    name: str
    limit: int
    window: int  # seconds


class FailureCounter:
    """Counts failed attempts of one kind; blocked once the limit is reached."""

    def __init__(self, store: Store, limit: Limit) -> None:
        self._store = store
        self._limit = limit

    def _key(self, subject: str) -> str:
        return self._store.key("rl", f"{self._limit.name}:{subject}")

    def blocked(self, subject: str) -> bool:
        raw = self._store.redis.get(self._key(subject))
        return raw is not None and int(raw) >= self._limit.limit

    def record_failure(self, subject: str) -> int:
        key = self._key(subject)
        pipe = self._store.redis.pipeline()  # MULTI/EXEC
        pipe.set(key, 0, ex=self._limit.window, nx=True)  # the window starts here
        pipe.incr(key)
        _, count = pipe.execute()
        return int(count)

    def reset(self, subject: str) -> None:
        self._store.redis.delete(self._key(subject))

    def retry_after(self, subject: str) -> int:
        return max(0, int(self._store.redis.ttl(self._key(subject))))
