"""The VAPID key pair (RFC 8292): generated on first use, private part encrypted at rest.

Browsers subscribe with the public key (``applicationServerKey``) and the push
service then accepts only messages signed with its private key, so every
instance must sign with the same key, for as long as subscriptions made with
it live. The key sits in SQL, its private part AES-256-GCM encrypted under
``derive_key(master, "vapid-keys")``, and is cached in each process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..encoding import b64url_encode
from ..extensions import detached_session
from ..sealed import Cached, Sealer, SealError
from .models import VapidKey

# How long a process trusts the key it read before reading it again (a key
# replaced by an operator is picked up).
CACHE_SECONDS = 60.0
# Every instance that finds no key claims this id for the one it generated.
FIRST_KEY_ID = 1
_AAD_PREFIX = b"freigabe vapid-key v1:"


def public_point(key: ec.EllipticCurvePrivateKey) -> str:
    """base64url of the uncompressed P-256 point (the ``applicationServerKey``)."""
    return b64url_encode(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


@dataclass(frozen=True)
class VapidKeyPair:
    public_key: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)


class VapidKeySource(Protocol):
    def current(self) -> VapidKeyPair: ...

    def ensure(self) -> None: ...


class VapidKeyError(Exception):
    """The stored VAPID key cannot be used (wrong key encryption key?)."""


class VapidKeyStore:
    """The deployment's VAPID key, from SQL. Needs an app context."""

    def __init__(self, *, encryption_key: bytes, cache_seconds: float = CACHE_SECONDS) -> None:
        # The public point is the associated data, after a purpose and version.
        self._sealer = Sealer(encryption_key, context=_AAD_PREFIX)
        self._cache: Cached[VapidKeyPair] = Cached(cache_seconds)

    def current(self) -> VapidKeyPair:
        """The key in use, generating it on first use."""
        return self._cache.get(self._load)

    def invalidate(self) -> None:
        """Read the key from the database again on next use."""
        self._cache.invalidate()

    def ensure(self) -> None:
        """Generate the key if there is none yet (without opening it)."""
        with detached_session(expire_on_commit=False) as session:
            if _oldest(session) is None:
                self._settle_concurrent_generation(session)

    def _load(self) -> VapidKeyPair:
        # A session of its own: generating the key must not commit whatever
        # the caller's request has pending in db.session.
        with detached_session(expire_on_commit=False) as session:
            row = _oldest(session)
            if row is None:
                row = self._settle_concurrent_generation(session)
            return self._decrypt(row)

    def _settle_concurrent_generation(self, session: Session) -> VapidKey:
        """Instances starting together may each generate a key. Each claims the
        first id; the database lets exactly one commit, and the others keep
        that one, the oldest, instead of their own. Unlike signing keys, a
        losing key must never be used even briefly: a browser that subscribed
        with it would accept pushes from no other key."""
        session.add(self._generate(FIRST_KEY_ID))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()  # another instance was first
        row = _oldest(session)
        if row is None:  # pragma: no cover - deleted between the two statements
            raise VapidKeyError("the VAPID key vanished while it was being created")
        return row

    def _generate(self, key_id: int) -> VapidKey:
        private = ec.generate_private_key(ec.SECP256R1())
        public = public_point(private)
        der = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        sealed = self._sealer.seal(der, name=public)
        return VapidKey(id=key_id, public_key=public, private_key_encrypted=sealed)

    def _decrypt(self, row: VapidKey) -> VapidKeyPair:
        try:
            der = self._sealer.open(row.private_key_encrypted, name=row.public_key)
        except SealError:
            raise VapidKeyError(
                "the stored VAPID key does not decrypt: was key_encryption_key changed?"
            ) from None
        private = serialization.load_der_private_key(der, password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey) or public_point(private) != (
            row.public_key
        ):
            raise VapidKeyError("the stored VAPID key does not match its public key")
        return VapidKeyPair(public_key=row.public_key, private_key=private)


def _oldest(session: Session) -> VapidKey | None:
    return session.scalars(
        select(VapidKey).order_by(VapidKey.created_at, VapidKey.id).limit(1)
    ).first()
