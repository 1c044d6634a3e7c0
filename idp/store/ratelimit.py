"""Attempt limits in fixed windows, shared by every instance through Redis.

A limit that counts failures must hold under concurrency: twenty wrong
passwords sent at the same moment may not get more than ``limit`` of them
checked. So an attempt is **reserved before it is checked**: one Redis round
trip (a script, atomic on the server) counts it in every window that applies,
or counts it in none and refuses it when any window is full. Only then does the
slow or secret-revealing check run. Afterwards the caller gives the attempt
back where its rule says so (a right password is not a failed sign-in), and an
unexpected error (Redis or SQL down mid-request) gives it back too, so a
request that failed for the server's reasons changes nothing.

At most ``limit`` attempts are ever evaluated per window and subject, however
many arrive at once: the (limit+1)-th reservation finds the window full.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from . import Store

# KEYS: the counters; ARGV: limit and window (seconds) of each, in turn.
# Counts the attempt in every window, or, if any window is full, in none.
# Returns {ok, count_1, ttl_1, count_2, ttl_2, ..., now}: the attempt's number
# in each window, the seconds left of it, and the server's clock (epoch seconds).
_RESERVE = """
local result = {1}
local refused = false
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, tonumber(ARGV[2 * i]))
  end
  if count > tonumber(ARGV[2 * i - 1]) then
    refused = true
  end
  result[2 * i] = count
  result[2 * i + 1] = redis.call('TTL', key)
end
if refused then
  result[1] = 0
  for _, key in ipairs(KEYS) do
    redis.call('DECR', key)
  end
end
result[#result + 1] = tonumber(redis.call('TIME')[1])
return result
"""

# Gives one attempt back to each counter that still exists (never below zero,
# never re-creating a window that ended meanwhile without a TTL).
_GIVE_BACK = """
for _, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count > 0 then
    redis.call('DECR', key)
  end
end
return 0
"""

# Gives one attempt back to a counter later, from another request, only if the
# window it was counted in is still the one running: it ends at ARGV[1] (epoch
# seconds, by the server's clock, give or take a second). A window that ended
# meanwhile took the attempt with it; the next one never pays for it.
_GIVE_BACK_IN = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count <= 0 then
  return 0
end
local ends = tonumber(redis.call('TIME')[1]) + redis.call('TTL', KEYS[1])
if math.abs(ends - tonumber(ARGV[1])) > 1 then
  return 0
end
redis.call('DECR', KEYS[1])
return 1
"""


@dataclass(frozen=True)
class Limit:
    name: str
    limit: int
    window: int  # seconds


class LimitReached(Exception):
    """An attempt was refused: a window it counts in is full."""

    def __init__(self, limit: Limit, subject: str, retry_after: int) -> None:
        super().__init__(f"{limit.name}: limit of {limit.limit} reached")
        self.limit = limit
        self.subject = subject
        # Seconds until the fullest window ends (at least 1).
        self.retry_after = retry_after


@dataclass
class Reservation:
    """One attempt, counted in each of its windows before it was checked."""

    store: Store
    counted: tuple[tuple[Limit, str], ...]
    numbers: tuple[int, ...]
    ttls: tuple[int, ...]
    _returned: set[str]
    # The server's clock when it was counted (epoch seconds).
    now: int = 0

    def number(self, limit: Limit) -> int:
        """This attempt's number in ``limit``'s window (1 = the first)."""
        for (counted, _subject), number in zip(self.counted, self.numbers, strict=True):
            if counted == limit:
                return number
        raise KeyError(limit.name)

    def retry_after(self, limit: Limit) -> int:
        """Seconds left of ``limit``'s window (at least 1)."""
        for (counted, _subject), ttl in zip(self.counted, self.ttls, strict=True):
            if counted == limit:
                return max(1, ttl)
        raise KeyError(limit.name)

    def window_end(self, limit: Limit) -> int:
        """When ``limit``'s window this attempt was counted in ends (epoch
        seconds, the server's clock): what ``give_back_later`` needs."""
        return self.now + self.retry_after(limit)

    def last_allowed(self, limit: Limit) -> bool:
        """This attempt filled ``limit``'s window: the next one is refused."""
        return self.number(limit) >= limit.limit

    def give_back(self, *limits: Limit) -> None:
        """Uncount this attempt from ``limits`` (default: all of them); once each."""
        chosen = limits or tuple(limit for limit, _ in self.counted)
        keys = []
        for limit, subject in self.counted:
            key = _key(self.store, limit, subject)
            if limit in chosen and key not in self._returned:
                self._returned.add(key)
                keys.append(key)
        if keys:
            self.store.script(_GIVE_BACK)(keys=keys)

    def reset(self, *limits: Limit) -> None:
        """End the window of ``limits`` for this attempt's subject (a success
        that clears the count, where the rule says so)."""
        for limit, subject in self.counted:
            if limit in limits:
                self._returned.add(_key(self.store, limit, subject))
                reset(self.store, limit, subject)

    @contextmanager
    def given_back_on_error(self, *counted: type[BaseException]) -> Iterator[Reservation]:
        """Gives the attempt back if the block raises anything but ``counted``
        (the failures the limit is about): an outage or a bug mid-check is
        not the client's attempt."""
        try:
            yield self
        except counted:
            raise
        except BaseException:
            self.give_back()
            raise


def _key(store: Store, limit: Limit, subject: str) -> str:
    return store.key("rl", f"{limit.name}:{subject}")


def reserve(store: Store, *counts: tuple[Limit, str]) -> Reservation:
    """Count one attempt in each ``(limit, subject)`` window, atomically and
    in one round trip, or raise ``LimitReached`` (counted in none)."""
    keys = [_key(store, limit, subject) for limit, subject in counts]
    args: list[int] = []
    for limit, _subject in counts:
        args += [limit.limit, limit.window]
    result = [int(x) for x in store.script(_RESERVE)(keys=keys, args=args)]
    numbers = tuple(result[1::2][: len(counts)])
    ttls = tuple(result[2::2][: len(counts)])
    now = result[-1]
    if result[0] != 1:
        full = [
            (limit, subject, ttl)
            for (limit, subject), number, ttl in zip(counts, numbers, ttls, strict=True)
            if number > limit.limit
        ]
        limit, subject, _ttl = full[0]
        raise LimitReached(limit, subject, retry_after=max(1, *(ttl for _, _, ttl in full)))
    return Reservation(
        store=store, counted=tuple(counts), numbers=numbers, ttls=ttls, _returned=set(), now=now
    )


def give_back_later(store: Store, limit: Limit, subject: str, *, window_end: int) -> bool:
    """Give back one attempt counted by an earlier request (its
    ``Reservation.window_end``), if that window is still running; once per
    attempt is the caller's duty. True if it was given back."""
    given = store.script(_GIVE_BACK_IN)(keys=[_key(store, limit, subject)], args=[window_end])
    return bool(int(given))


def retry_after(store: Store, limit: Limit, subject: str) -> int | None:
    """Seconds until ``limit``'s window for ``subject`` ends if it is full
    now, else None (a look, not an attempt)."""
    key = _key(store, limit, subject)
    pipe = store.redis.pipeline(transaction=False)
    pipe.get(key)
    pipe.ttl(key)
    raw, ttl = pipe.execute()
    if raw is None or int(raw) < limit.limit:
        return None
    return max(1, int(ttl))


def reset(store: Store, limit: Limit, subject: str) -> None:
    store.redis.delete(_key(store, limit, subject))
