"""Development secrets kept under the instance folder.

Only for a localhost issuer with no secrets configured (the embedded demo):
generated once at first start and reused, so restarts keep sessions valid and
signing keys decryptable. Production refuses to start without configured
secrets (config.Settings).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from .encoding import b64url_decode, b64url_encode


def load_or_create_dev_secrets(instance_path: Path) -> dict[str, str]:
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / "dev-secrets.json"
    try:
        with path.open() as handle:
            return dict(json.load(handle))
    except FileNotFoundError:
        pass
    values = {
        "secret_key": secrets.token_urlsafe(48),
        "key_encryption_key": b64url_encode(os.urandom(32)),
    }
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        with path.open() as handle:
            return dict(json.load(handle))
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return values


def decode_key(value: str) -> bytes:
    """A 32-byte key from its base64url form (padded or not)."""
    try:
        raw = b64url_decode(value.rstrip("="))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError("key_encryption_key must be 32 bytes, base64url encoded")
    return raw
