"""The CLI device's PIN-encrypted key store."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from clients.device.authenticator import CredentialKey
from clients.device.keystore import KeyStore, KeyStoreError, WrongPin

from .helpers import ISSUER, USER_HANDLE, answer, approval, check, register_device

PIN = "481516"


def payload(key: CredentialKey) -> dict[str, object]:
    return {
        "server": ISSUER,
        "device_id": "dev_1",
        "device_token": "dt_secret-device-api-token",
        "credential": key.to_dict(),
    }


def test_right_pin_unlocks_and_the_key_still_signs(tmp_path: Path) -> None:
    device = register_device()
    answer(device, approval())  # the counter is at 1 now
    path = tmp_path / "device.json"
    KeyStore.create(path, PIN, payload(device.key))

    data = KeyStore.unlock(path, PIN)
    assert data["server"] == ISSUER
    assert data["device_token"] == "dt_secret-device-api-token"
    key = CredentialKey.from_dict(data["credential"])
    assert key.credential_id == device.key.credential_id
    assert key.user_handle == USER_HANDLE
    assert key.sign_count == 1

    device.key = key
    challenge = approval(approval_id="apr_2")
    verified = check(device, answer(device, challenge), challenge, current_sign_count=1)
    assert verified.new_sign_count == 2


def test_wrong_pin_raises_wrong_pin(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    KeyStore.create(path, PIN, {"device_token": "x"})
    with pytest.raises(WrongPin):
        KeyStore.unlock(path, "000000")


def test_file_is_private_and_holds_no_secret_in_clear(tmp_path: Path) -> None:
    device = register_device()
    path = tmp_path / "nested" / "device.json"
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        KeyStore.create(path, PIN, payload(device.key))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_text()
    for secret in ("dt_secret", "PRIVATE KEY", ISSUER, "dev_1"):
        assert secret not in raw
    assert json.loads(raw)["kdf"]["name"] == "argon2id"


def test_create_refuses_an_existing_store_and_save_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    KeyStore.create(path, PIN, {"n": 1})
    with pytest.raises(FileExistsError):
        KeyStore.create(path, PIN, {"n": 2})
    KeyStore.save(path, "new-pin", {"n": 3})  # saving under another PIN changes it
    assert KeyStore.unlock(path, "new-pin") == {"n": 3}
    with pytest.raises(WrongPin):
        KeyStore.unlock(path, PIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["device.json"]  # no temporary files left


def test_tampering_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    KeyStore.create(path, PIN, {"n": 1})
    document = json.loads(path.read_text())

    # The KDF parameters are bound as associated data (and change the key).
    path.write_text(json.dumps({**document, "kdf": {**document["kdf"], "time_cost": 2}}))
    with pytest.raises(WrongPin):
        KeyStore.unlock(path, PIN)

    ciphertext = document["ciphertext"]
    flipped = ciphertext[:-2] + ("A" if ciphertext[-2] != "A" else "B") + ciphertext[-1]
    path.write_text(json.dumps({**document, "ciphertext": flipped}))
    with pytest.raises(WrongPin):
        KeyStore.unlock(path, PIN)

    path.write_text(json.dumps({**document, "version": 2}))
    with pytest.raises(KeyStoreError):
        KeyStore.unlock(path, PIN)


def test_short_pins_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        KeyStore.create(tmp_path / "device.json", "123", {})
    assert not KeyStore.exists(tmp_path / "device.json")


def test_wipe_removes_the_store(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    KeyStore.create(path, PIN, {"device_token": "x"})
    KeyStore.wipe(path)
    assert not path.exists()
    assert not KeyStore.exists(path)
    KeyStore.wipe(path)  # already gone: nothing to do
    with pytest.raises(KeyStoreError):
        KeyStore.unlock(path, PIN)


def test_a_store_is_saved_with_the_named_argon2id_parameters(tmp_path: Path) -> None:
    device = register_device()
    default, cheap = tmp_path / "default.json", tmp_path / "cheap.json"
    KeyStore.create(default, PIN, payload(device.key))
    KeyStore.create(cheap, PIN, payload(device.key), kdf="cheapest")

    def parameters(path: Path) -> tuple[int, int, int]:
        kdf = json.loads(path.read_text())["kdf"]
        return kdf["time_cost"], kdf["memory_cost"], kdf["parallelism"]

    assert parameters(default) == (3, 65536, 4)  # RFC 9106 §4, second recommendation
    assert parameters(cheap) == (1, 8, 1)
    # Either opens with its PIN alone: the file names its parameters.
    assert KeyStore.unlock(cheap, PIN) == KeyStore.unlock(default, PIN)
    with pytest.raises(WrongPin):
        KeyStore.unlock(cheap, "000000")
