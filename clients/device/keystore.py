"""The CLI device's key store: one JSON file whose contents are encrypted under a PIN.

The PIN is the CLI's stand-in for a phone's biometric unlock: without it the
credential key cannot sign, and a wrong PIN is found out here, locally (the
AES-GCM tag does not verify), so it never reaches a server.

File (mode 0600)::

    {"format": "freigabe-device-keystore", "version": 1,
     "kdf": {"name": "argon2id", "salt": B64URL, "time_cost": 3,
             "memory_cost": 65536, "parallelism": 4},
     "nonce": B64URL, "ciphertext": B64URL}

* key = Argon2id(PIN as NFC UTF-8, salt, the parameters above; by default
  RFC 9106's second recommended set, ``KDF_PROFILES`` for the others a store
  may be saved with), 32 bytes, fresh random 16-byte salt on every save;
* ciphertext = AES-256-GCM(key, random 96-bit nonce, the JSON of the payload),
  with associated data the compact sorted JSON of format, version and kdf, so
  the file's version and parameters cannot be changed without detection.

The whole payload is encrypted (server URL, device ID, device API token,
``CredentialKey.to_dict()`` ...): nothing about the device is readable without
the PIN. A short numeric PIN is only as strong as Argon2 makes guessing it
offline; the file's permissions are the first line of defence.
"""

from __future__ import annotations

import json
import os
import secrets
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from argon2 import Parameters, profiles
from argon2.exceptions import HashingError
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.encoding import b64url_decode, b64url_encode

FORMAT = "freigabe-device-keystore"
VERSION = 1
MIN_PIN_LENGTH = 4

# The Argon2id parameters a store is saved with, by name (``idp-device --kdf``).
# Unlocking uses whatever parameters the file names, within the bounds below.
KDF_PROFILES: Mapping[str, Parameters] = {
    # RFC 9106 §4's second recommendation: t=3, m=64 MiB, p=4 (the default).
    "rfc9106-low-memory": profiles.RFC_9106_LOW_MEMORY,
    # argon2-cffi's cheapest parameters: t=1, m=8 KiB, p=1. For test key
    # stores only: a PIN under them is guessed offline in moments.
    "cheapest": profiles.CHEAPEST,
}
DEFAULT_KDF = "rfc9106-low-memory"
# Refused on unlock: a tampered file must not make us allocate gigabytes.
_MAX_MEMORY_COST = 1024 * 1024  # KiB (1 GiB)
_MAX_TIME_COST = 16
_MAX_PARALLELISM = 16


class KeyStoreError(Exception):
    """The key store file is missing, unreadable or not a key store."""


class WrongPin(KeyStoreError):
    """The PIN does not open the key store (or the file was tampered with:
    AES-GCM cannot tell the two apart)."""


def _derive_key(pin: str, kdf: Mapping[str, Any]) -> bytes:
    return hash_secret_raw(
        secret=unicodedata.normalize("NFC", pin).encode("utf-8"),
        salt=b64url_decode(kdf["salt"]),
        time_cost=kdf["time_cost"],
        memory_cost=kdf["memory_cost"],
        parallelism=kdf["parallelism"],
        hash_len=32,
        type=Type.ID,
    )


def _associated_data(header: Mapping[str, Any]) -> bytes:
    bound = {"format": header["format"], "version": header["version"], "kdf": header["kdf"]}
    return json.dumps(bound, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _write_private(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)  # whatever the umask
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class KeyStore:
    """Operations on a key store file; nothing is kept in memory between calls."""

    @staticmethod
    def exists(path: str | os.PathLike[str]) -> bool:
        return Path(path).is_file()

    @staticmethod
    def create(
        path: str | os.PathLike[str], pin: str, data: Mapping[str, Any], *, kdf: str = DEFAULT_KDF
    ) -> None:
        """A new key store holding ``data``; FileExistsError if there is one."""
        if Path(path).exists():
            raise FileExistsError(f"a key store exists at {path}")
        KeyStore.save(path, pin, data, kdf=kdf)

    @staticmethod
    def save(
        path: str | os.PathLike[str], pin: str, data: Mapping[str, Any], *, kdf: str = DEFAULT_KDF
    ) -> None:
        """Encrypt ``data`` (JSON-serialisable) under ``pin`` and replace the file,
        with the Argon2id parameters ``KDF_PROFILES[kdf]``.

        Saving with another PIN changes the PIN.
        """
        if len(pin) < MIN_PIN_LENGTH:
            raise ValueError(f"the PIN needs at least {MIN_PIN_LENGTH} characters")
        parameters = KDF_PROFILES[kdf]
        header: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "kdf": {
                "name": "argon2id",
                "salt": b64url_encode(secrets.token_bytes(16)),
                "time_cost": parameters.time_cost,
                "memory_cost": parameters.memory_cost,
                "parallelism": parameters.parallelism,
            },
        }
        nonce = secrets.token_bytes(12)
        plaintext = json.dumps(dict(data), separators=(",", ":")).encode("utf-8")
        ciphertext = AESGCM(_derive_key(pin, header["kdf"])).encrypt(
            nonce, plaintext, _associated_data(header)
        )
        document = {
            **header,
            "nonce": b64url_encode(nonce),
            "ciphertext": b64url_encode(ciphertext),
        }
        _write_private(Path(path), json.dumps(document, indent=2).encode("utf-8") + b"\n")

    @staticmethod
    def unlock(path: str | os.PathLike[str], pin: str) -> dict[str, Any]:
        """The stored data; WrongPin if ``pin`` does not open it."""
        try:
            document = json.loads(Path(path).read_bytes())
            if document["format"] != FORMAT or document["version"] != VERSION:
                raise KeyStoreError(f"{path} is not a version {VERSION} device key store")
            kdf = document["kdf"]
            if (
                kdf["name"] != "argon2id"
                or not 1 <= kdf["time_cost"] <= _MAX_TIME_COST
                or not 8 <= kdf["memory_cost"] <= _MAX_MEMORY_COST
                or not 1 <= kdf["parallelism"] <= _MAX_PARALLELISM
            ):
                raise KeyStoreError("unsupported key derivation parameters")
            nonce = b64url_decode(document["nonce"])
            ciphertext = b64url_decode(document["ciphertext"])
            if len(nonce) != 12:
                raise KeyStoreError("the nonce is not 96 bits")
            key = _derive_key(pin, kdf)
        except KeyStoreError:
            raise
        except FileNotFoundError as exc:
            raise KeyStoreError(f"no key store at {path}") from exc
        except (OSError, ValueError, KeyError, TypeError, HashingError) as exc:
            raise KeyStoreError(f"{path} is not a readable key store") from exc
        try:
            plaintext = AESGCM(key).decrypt(nonce, ciphertext, _associated_data(document))
        except InvalidTag:
            raise WrongPin("wrong PIN") from None
        data = json.loads(plaintext)
        if not isinstance(data, dict):
            raise KeyStoreError("the key store does not hold a JSON object")
        return data

    @staticmethod
    def wipe(path: str | os.PathLike[str]) -> None:
        """Overwrite the file with random bytes, then delete it (no error if absent).

        On SSDs and copy-on-write file systems old blocks may survive the
        overwrite; they are ciphertext under the PIN.
        """
        path = Path(path)
        try:
            with open(path, "r+b") as f:
                f.write(secrets.token_bytes(os.fstat(f.fileno()).st_size))
                f.flush()
                os.fsync(f.fileno())
        except FileNotFoundError:
            return
        path.unlink(missing_ok=True)
