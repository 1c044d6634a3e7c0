"""Restoration codes and the restoration row (``RestorationSetup``): what
activation (``idp.restore.activation``) and restoring a device
(``idp.restore.service``) share."""

from __future__ import annotations

import secrets
from datetime import datetime

from ..devices.enrolment import mask_destination
from ..devices.models import Device
from ..extensions import db, insert_ignore, utcnow
from ..state import idp
from .models import RestorationSetup

# Code 1: 16 symbols of 32 (no 0/O, 1/I) = 80 random bits, shown "XXXX-XXXX-XXXX-XXXX".
CODE1_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE1_LENGTH = 16
# Code 2 (e-mailed during a restoration) and the e-mail confirmation code.
CODE2_DIGITS = 8
EMAIL_CODE_DIGITS = 6
# Wrong codes 2 per attempt before the attempt is void (they also count per
# login ID and per IP address); wrong e-mail confirmation codes per activation.
CODE2_TRIES = 3
EMAIL_CODE_TRIES = 5
# "Back up your identity" is asked at this login confirmed on a device.
BACKUP_PROMPT_AT_LOGIN = 6


def new_code1() -> str:
    code = "".join(secrets.choice(CODE1_ALPHABET) for _ in range(CODE1_LENGTH))
    return "-".join(code[i : i + 4] for i in range(0, CODE1_LENGTH, 4))


def normalise_code1(text: str) -> str:
    """What the user typed, without grouping, spaces and case."""
    return "".join(c for c in text.upper() if c.isalnum())


def code1_digest(user_id: int, code: str) -> str:
    return idp().digester.digest(normalise_code1(code), purpose=f"restoration-code:{user_id}")


def digits(text: str, length: int) -> str | None:
    if len(text) > 32:
        return None
    digits = "".join(c for c in text if not c.isspace() and c != "-")
    return digits if len(digits) == length and digits.isascii() and digits.isdigit() else None


def new_digits(length: int) -> str:
    return f"{secrets.randbelow(10**length):0{length}d}"


def issue_code1(setup: RestorationSetup, device: Device, now: datetime) -> str:
    """A new code 1 for the setup (the old one is void once committed)."""
    code = new_code1()
    setup.code_digest = code1_digest(setup.user_id, code)
    setup.code_device_id = device.id
    setup.rotated_at = now
    return code


def masked(email: str) -> str:
    return mask_destination(email, "email")


def valid_id(value: str) -> bool:
    return 0 < len(value) <= 64


def restoration_setup(user_id: int, *, create: bool = False) -> RestorationSetup | None:
    """The user's restoration row; with ``create``, made first if missing (an
    upsert: two requests making it at once both get the one row)."""
    setup: RestorationSetup | None = db.session.get(RestorationSetup, user_id)
    if setup is None and create:
        insert_ignore(RestorationSetup, {"user_id": user_id, "created_at": utcnow()},
                      key=["user_id"])  # fmt: skip
        setup = db.session.get(RestorationSetup, user_id)
    return setup


def current_code1(user_id: int) -> str | None:
    setup = restoration_setup(user_id)
    return setup.code_digest if setup is not None else None
