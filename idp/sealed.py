"""Private keys kept in SQL, sealed, and read through a short cache.

Signing keys (idp.oidc.keys) and the VAPID key (idp.push.keys) are stored the
same way: AES-256-GCM under a key derived from ``key_encryption_key``, a
random 96-bit nonce in front of the ciphertext, and the row's public name as
associated data, so a sealed key copied onto another row does not open. And
each process trusts what it read for a few seconds before reading it again,
so a key rotated by another instance is picked up.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

T = TypeVar("T")
NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value does not open (another key_encryption_key, or tampering)."""


class Sealer:
    """Seals and opens values under one key; ``context`` prefixes the
    associated data of every value (a purpose and version)."""

    def __init__(self, key: bytes, *, context: bytes = b"") -> None:
        self._aead = AESGCM(key)
        self._context = context

    def seal(self, plaintext: bytes, *, name: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, self._context + name.encode())

    def open(self, sealed: bytes, *, name: str) -> bytes:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ciphertext, self._context + name.encode())
        except (InvalidTag, ValueError):
            raise SealError(f"the sealed value {name!r} does not open") from None


class Cached(Generic[T]):
    """A value loaded on demand and trusted for ``seconds``; one thread
    loads it while the others wait for the result."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._value: T | None = None
        self._loaded_at = 0.0

    def get(self, load: Callable[[], T]) -> T:
        value = self._fresh()
        if value is not None:
            return value
        with self._lock:
            value = self._fresh()
            if value is None:
                value = load()
                self._value, self._loaded_at = value, time.monotonic()
            return value

    def peek(self) -> T | None:
        """The value if it is still trusted, without loading."""
        return self._fresh()

    def invalidate(self) -> None:
        """Load again on next use."""
        self._loaded_at = 0.0

    def _fresh(self) -> T | None:
        if self._value is not None and time.monotonic() - self._loaded_at < self.seconds:
            return self._value
        return None
