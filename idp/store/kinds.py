"""Typed stores: each kind of ephemeral state declared once.

A ``Kind`` names one kind of value kept in Redis (a login transaction, an
approval, an authorization code, a nonce): its key prefix, its Python type
and its lifetime, in one place. Code reads and writes it through the kind,
never through an inline key prefix:

    TRANSACTIONS = Kind("tx", LoginTransaction, ttl=lambda s: s.login_transaction_lifetime)
    TRANSACTIONS.put(tx.id, tx)
    tx = TRANSACTIONS.get(tx_id)

Values are JSON in Redis: dataclasses by their fields (members a record
written by another release has or lacks are tolerated while instances are
upgraded), anything else as plain JSON. Single use is ``consume`` (GETDEL:
of two concurrent callers, one gets the value). Tests let a value expire
with ``expire`` rather than deleting keys by name or waiting out its TTL.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from ..state import idp

if TYPE_CHECKING:
    from ..config import Settings
    from . import Store

T = TypeVar("T")


@dataclass(frozen=True)
class Kind(Generic[T]):
    namespace: str
    type: type[T]
    # Seconds a value lives unless the caller gives its own.
    ttl: Callable[[Settings], int]

    @property
    def store(self) -> Store:
        return idp().store

    def key(self, name: str) -> str:
        return self.store.key(self.namespace, name)

    def lifetime(self) -> int:
        return int(self.ttl(idp().settings))

    def dump(self, value: T) -> str:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return json.dumps(dataclasses.asdict(value))
        return json.dumps(value)

    def load(self, raw: bytes | str | None) -> T | None:
        if raw is None:
            return None
        data = json.loads(raw)
        if dataclasses.is_dataclass(self.type):
            if not isinstance(data, dict):
                return None
            known = {f.name for f in dataclasses.fields(self.type)}
            return cast(T, self.type(**{k: v for k, v in data.items() if k in known}))
        return cast(T, data)

    def put(self, name: str, value: T, *, ttl: int | None = None) -> None:
        self.store.redis.set(self.key(name), self.dump(value), ex=ttl or self.lifetime())

    def add(self, name: str, value: T, *, ttl: int | None = None) -> bool:
        """Store only if absent; False when the name is taken."""
        return bool(
            self.store.redis.set(
                self.key(name), self.dump(value), ex=ttl or self.lifetime(), nx=True
            )
        )

    def get(self, name: str | None) -> T | None:
        if not _valid(name):
            return None
        return self.load(self.store.redis.get(self.key(cast(str, name))))

    def consume(self, name: str | None) -> T | None:
        """Read and delete in one atomic step: at most one caller gets it."""
        if not _valid(name):
            return None
        return self.load(self.store.redis.getdel(self.key(cast(str, name))))

    def exists(self, name: str) -> bool:
        return bool(self.store.redis.exists(self.key(name)))

    def delete(self, name: str) -> None:
        self.store.redis.delete(self.key(name))

    def seconds_left(self, name: str) -> int:
        """Seconds until it expires (negative: gone, or no TTL)."""
        return int(self.store.redis.ttl(self.key(name)))

    def expire(self, name: str) -> None:
        """Let the value expire now, as its lifetime would (for tests and
        for callers that end something early)."""
        self.delete(name)


MAX_NAME = 256


def _valid(name: Any) -> bool:
    return isinstance(name, str) and 0 < len(name) <= MAX_NAME
