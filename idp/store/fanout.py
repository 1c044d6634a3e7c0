"""Redis pub/sub with one connection per process, fanned out to waiting threads.

A waiting page must not cost a Redis connection of its own: with a thousand
pages waiting, that would be a thousand subscriber connections per instance.
One listener thread per process subscribes to the pattern of all our channels
and wakes the threads waiting on a channel through ``threading.Event``s. The
listener starts on first use, so it lives in the process that serves
requests (after gunicorn's fork), and reconnects after errors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import redis

log = logging.getLogger(__name__)


class Waiter:
    """Set when a message arrives on its channel."""

    def __init__(self, closed: threading.Event | None = None) -> None:
        self._event = threading.Event()
        self._closed = closed or threading.Event()

    @property
    def closed(self) -> bool:
        """The fanout was closed (the process is stopping): stop waiting."""
        return self._closed.is_set()

    def wait(self, timeout: float) -> bool:
        """True if a message arrived (since the last wait) within ``timeout``."""
        woke = self._event.wait(timeout)
        self._event.clear()
        return woke

    def notify(self) -> None:
        self._event.set()


class Fanout:
    def __init__(self, client: redis.Redis, pattern: str) -> None:
        self._client = client
        # The listener's connection comes from a pool of its own, so it never
        # waits behind requests for a pooled connection.
        shared = client.connection_pool
        self._listener_client = redis.Redis(
            connection_pool=redis.ConnectionPool(
                connection_class=shared.connection_class,
                max_connections=2,
                **shared.connection_kwargs,
            )
        )
        self._pattern = pattern
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Waiter]] = {}
        self._thread: threading.Thread | None = None
        self._subscribed = threading.Event()
        self._closed = threading.Event()

    def close(self) -> None:
        """Stop the listener (it notices within a second) and wake every waiter."""
        self._closed.set()
        self._wake_everyone()

    def publish(self, channel: str, message: str) -> None:
        self._client.publish(channel, message)

    @contextmanager
    def listen(self, channel: str) -> Iterator[Waiter]:
        """A waiter for ``channel``; messages published after this returns are
        not missed (the process subscribes before the first waiter is given)."""
        self._ensure_listener()
        waiter = Waiter(self._closed)
        with self._lock:
            self._waiters.setdefault(channel, set()).add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                waiting = self._waiters.get(channel)
                if waiting is not None:
                    waiting.discard(waiter)
                    if not waiting:
                        del self._waiters[channel]

    def _ensure_listener(self) -> None:
        if self._closed.is_set():
            raise redis.ConnectionError("the store is closed")
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._subscribed.clear()
                self._thread = threading.Thread(target=self._run, name="redis-fanout", daemon=True)
                self._thread.start()
        if not self._subscribed.wait(10):
            raise redis.ConnectionError("the pub/sub listener could not subscribe")

    def _dispatch(self, channel: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(channel, ()))
        for waiter in waiters:
            waiter.notify()

    def _wake_everyone(self) -> None:
        with self._lock:
            everyone = [w for ws in self._waiters.values() for w in ws]
        for waiter in everyone:
            waiter.notify()

    def _run(self) -> None:
        backoff = 0.1
        resubscribed = False
        while not self._closed.is_set():
            pubsub = self._listener_client.pubsub()
            try:
                pubsub.psubscribe(self._pattern)
                backoff = 0.1
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "psubscribe":
                        # Confirmed: from now on no message is missed.
                        self._subscribed.set()
                        if resubscribed:
                            # What was published while we were away is lost:
                            # waiters read their state again.
                            self._wake_everyone()
                        continue
                    if message["type"] != "pmessage":
                        continue
                    channel = message["channel"]
                    self._dispatch(channel.decode() if isinstance(channel, bytes) else channel)
            except redis.RedisError as exc:
                if self._closed.is_set():
                    return
                log.warning("pub/sub listener: %s; reconnecting", type(exc).__name__)
                # Waiters re-read their state on wake-up: wake everyone, so
                # nothing published while we were away is missed for long.
                self._wake_everyone()
                resubscribed = True
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with suppress(redis.RedisError):
                    pubsub.close()
