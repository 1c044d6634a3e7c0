"""Random tokens and their keyed digests.

High-entropy secrets (client secrets, refresh tokens, access tokens, codes) are
stored as HMAC-SHA-256 under a key from configuration: fast to check, useless
to whoever reads the database. Passwords use argon2id instead (accounts).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token with ``nbytes`` of entropy."""
    return secrets.token_urlsafe(nbytes)


def derive_key(master: bytes, purpose: str) -> bytes:
    """A 32-byte subkey of ``master`` for one purpose (HKDF-SHA-256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        master
    )


class TokenDigester:
    """Keyed SHA-256 digests of high-entropy tokens, compared in constant time."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def digest(self, token: str, *, purpose: str) -> str:
        mac = hmac.new(self._key, purpose.encode() + b"\0" + token.encode(), hashlib.sha256)
        return mac.hexdigest()

    def matches(self, token: str, stored_digest: str, *, purpose: str) -> bool:
        return hmac.compare_digest(self.digest(token, purpose=purpose), stored_digest)
