"""Which second factors a user can use now: the one definition.

The login decision (``idp.auth.policy``), the account page's and the admin
pages' "confirm it is you", and the passkey rules all ask this. A device
counts while it is active and not waiting out a restoration's veto window
(``Device.is_pending``: it cannot answer an approval yet); a passkey counts
once registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..devices.models import Device
from ..extensions import db
from ..passkeys.models import Passkey


@dataclass(frozen=True)
class SecondFactors:
    # Devices that can answer an approval now.
    devices: tuple[str, ...]
    passkey: bool
    # Restored devices still in their veto window: not usable yet, but the
    # account has them (a password alone must not add a factor beside them).
    pending: tuple[str, ...] = ()

    @property
    def app(self) -> bool:
        return bool(self.devices)

    @property
    def any(self) -> bool:
        """A second factor usable now."""
        return self.app or self.passkey

    @property
    def enrolled(self) -> bool:
        """A second factor usable now or once its veto window has passed."""
        return self.any or bool(self.pending)


NONE = SecondFactors(devices=(), passkey=False)


def second_factors(user_id: int, now: datetime) -> SecondFactors:
    rows = db.session.execute(
        select(Device.id, Device.pending_until)
        .where(Device.user_id == user_id, Device.revoked_at.is_(None))
        .order_by(Device.created_at)
    ).all()
    usable = tuple(d for d, until in rows if until is None or until <= now)
    pending = tuple(d for d, until in rows if until is not None and until > now)
    passkey = db.session.scalar(select(Passkey.id).where(Passkey.user_id == user_id).limit(1))
    return SecondFactors(devices=usable, passkey=passkey is not None, pending=pending)
