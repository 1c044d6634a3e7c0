"""Signing keys: generated on first use, private parts encrypted at rest.

ES256 is the default ID token algorithm, RS256 is offered too. ``rotate``
keeps the old key published (state "retiring") until every token it signed
has expired, then it drops out of the JWKS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..extensions import after_commit, db, detached_session, utcnow
from ..sealed import Cached, Sealer
from .models import KeyState, SigningKey

ALGORITHMS = ("ES256", "RS256")
# How long key state read from the database is trusted before re-reading, so a
# rotation done by another instance (or the CLI) is picked up.
CACHE_SECONDS = 30

JoseKey = ECKey | RSAKey


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    alg: str
    key: JoseKey


@dataclass(frozen=True)
class _Published:
    active: dict[str, ActiveKey]
    jwks: bytes  # serialised once per load


class KeyRing:
    def __init__(self, *, encryption_key: bytes, token_lifetime: int) -> None:
        # The kid is the associated data (no context: keys sealed so far stay readable).
        self._sealer = Sealer(encryption_key)
        self._token_lifetime = token_lifetime
        self._cache: Cached[_Published] = Cached(CACHE_SECONDS)
        # Private keys opened by earlier loads, by kid, with the sealed bytes
        # they came from: a reload opens only keys it has not seen (parsing
        # an RSA key checks it, which takes longer than the query).
        self._opened: dict[str, tuple[bytes, JoseKey]] = {}

    # --- reading ------------------------------------------------------------
    def signing_key(self, alg: str) -> ActiveKey:
        return self._cache.get(self._load).active[alg]

    def jwks_bytes(self) -> bytes:
        """The published key set (the same bytes object until the next load)."""
        return self._cache.get(self._load).jwks

    def fresh_jwks_bytes(self) -> bytes | None:
        """The published key set if it needs no reload (no database, no app context)."""
        published = self._cache.peek()
        return None if published is None else published.jwks

    def _load(self) -> _Published:
        # A session of its own: reading (and on first use generating) the
        # keys is not part of the caller's unit of work.
        with detached_session(expire_on_commit=False) as session:
            self._ensure_keys(session)
            now = utcnow()
            rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at)).all()
            active: dict[str, ActiveKey] = {}
            published = []
            for row in rows:
                if row.state == KeyState.ACTIVE:
                    active[row.alg] = ActiveKey(row.kid, row.alg, self._open(row))
                if is_published(row, now):
                    published.append(row.public_jwk)
        self._opened = {key.kid: self._opened[key.kid] for key in active.values()}
        jwks = json.dumps({"keys": published}, separators=(",", ":")).encode()
        return _Published(active, jwks)

    def invalidate(self) -> None:
        self._cache.invalidate()

    # --- changing -----------------------------------------------------------
    def ensure_keys(self) -> None:
        """Generate an active key for every algorithm that has none (in a
        transaction of its own, committed at once)."""
        with detached_session(expire_on_commit=False) as session:
            self._ensure_keys(session)

    def _ensure_keys(self, session: Session) -> None:
        have = set(
            session.scalars(select(SigningKey.alg).where(SigningKey.state == KeyState.ACTIVE)).all()
        )
        missing = [alg for alg in ALGORITHMS if alg not in have]
        for alg in missing:
            session.add(self._generate(alg))
        if missing:
            session.commit()
            self._settle_concurrent_generation(session, missing)

    def _settle_concurrent_generation(self, session: Session, algs: list[str]) -> None:
        """Instances starting together may each have generated a key: keep
        the oldest active and retire the others (still published, in case
        one of them has signed something already)."""
        retire_after = utcnow() + timedelta(seconds=self._token_lifetime + 60)
        for alg in algs:
            rows = session.scalars(
                select(SigningKey)
                .where(SigningKey.alg == alg, SigningKey.state == KeyState.ACTIVE)
                .order_by(SigningKey.created_at, SigningKey.kid)
            ).all()
            for extra in rows[1:]:
                extra.state = KeyState.RETIRING
                extra.retire_after = retire_after
        session.commit()

    def rotate(self, alg: str, *, now: datetime | None = None) -> SigningKey:
        """A new active key for ``alg``; the old one retires after the longest
        lifetime of a token it may have signed."""
        if alg not in ALGORITHMS:
            raise ValueError(f"unsupported algorithm {alg}")
        now = now or utcnow()
        retire_after = now + timedelta(seconds=self._token_lifetime + 60)
        for old in db.session.scalars(
            select(SigningKey).where(SigningKey.alg == alg, SigningKey.state == KeyState.ACTIVE)
        ):
            old.state = KeyState.RETIRING
            old.retire_after = retire_after
        new = self._generate(alg)
        db.session.add(new)
        after_commit(self.invalidate)
        return new

    def retire_expired(self, *, now: datetime | None = None) -> int:
        now = now or utcnow()
        count = 0
        for row in db.session.scalars(
            select(SigningKey).where(SigningKey.state == KeyState.RETIRING)
        ):
            if row.retire_after is not None and row.retire_after <= now:
                row.state = KeyState.RETIRED
                count += 1
        after_commit(self.invalidate)
        return count

    def _generate(self, alg: str) -> SigningKey:
        key: JoseKey
        if alg == "ES256":
            key = ECKey.generate_key("P-256", auto_kid=True)
        else:
            key = RSAKey.generate_key(2048, auto_kid=True)
        public: dict[str, Any] = dict(key.as_dict(private=False))
        public.update({"kid": key.kid, "alg": alg, "use": "sig"})
        return SigningKey(
            kid=key.kid,
            alg=alg,
            public_jwk=public,
            private_key_encrypted=self._sealer.seal(key.as_pem(private=True), name=key.kid or ""),
            state=KeyState.ACTIVE,
        )

    def _open(self, row: SigningKey) -> JoseKey:
        sealed = bytes(row.private_key_encrypted)
        opened = self._opened.get(row.kid)
        if opened is None or opened[0] != sealed:
            opened = self._opened[row.kid] = (sealed, self._decrypt(row))
        return opened[1]

    def _decrypt(self, row: SigningKey) -> JoseKey:
        pem = self._sealer.open(row.private_key_encrypted, name=row.kid)
        key: JoseKey
        key = ECKey.import_key(pem) if row.alg == "ES256" else RSAKey.import_key(pem)
        key.ensure_kid()
        return key


def is_published(row: SigningKey, now: datetime) -> bool:
    if row.state == KeyState.ACTIVE:
        return True
    return (
        row.state == KeyState.RETIRING and row.retire_after is not None and row.retire_after > now
    )
