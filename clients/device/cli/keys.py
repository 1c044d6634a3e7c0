"""This device's key: registering it (enrolment and restoration) and signing
with it."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..api import ApiError, DeviceApi
from ..authenticator import CredentialKey, create_credential, get_assertion
from ..keystore import KeyStore
from .common import STORE_VERSION, Device, State, fail, say
from .messages import describe_error


def default_device_name() -> str:
    return f"{socket.gethostname() or 'this computer'} (idp-device)"[:100]


def origin_and_rp_id(server: str, public_key: Mapping[str, Any]) -> tuple[str, str]:
    rp = public_key.get("rp")
    rp_id = rp.get("id") if isinstance(rp, Mapping) else None
    return server, str(rp_id or urlsplit(server).hostname or "")


def register_key(
    api: DeviceApi,
    state: State,
    *,
    pin: str,
    enrolment_id: str,
    public_key: Mapping[str, Any],
    code: str | None,
    code_given: bool,
) -> None:
    """Create the credential, "complete key registration", create the key store."""
    origin, rp_id = origin_and_rp_id(api.server, public_key)
    # The software authenticator checks that the RP ID belongs to this server.
    key, credential = create_credential(options_json=public_key, origin=origin)
    say("Completing key registration …")
    while True:
        try:
            enrolled = api.complete_enrolment(
                enrolment_id, credential=credential, confirmation_code=code
            )
            break
        except ApiError as exc:
            # A wrong code may be typed again (the server allows a few tries).
            if exc.error != "wrong_code" or code_given or not state.interactive:
                raise
            say(describe_error(exc))
            code = state.ask("Confirmation code")
    create_store(state, pin, server=api.server, rp_id=rp_id, key=key, enrolled=enrolled)
    device, user = enrolled["device"], enrolled["user"]
    say(
        f"Key registered: device {device.get('name')!r} ({device.get('id')}) for access number "
        f"{user.get('access_number')}. The key store is {state.store}."
    )


def create_store(
    state: State,
    pin: str,
    *,
    server: str,
    rp_id: str,
    key: CredentialKey,
    enrolled: Mapping[str, Any],
) -> None:
    """The key store of a newly registered key (enrolment and restoration alike)."""
    data = {
        "version": STORE_VERSION,
        "server": server,
        "rp_id": rp_id,
        "device": enrolled["device"],
        "device_token": enrolled["device_token"],
        "user": enrolled["user"],
        "vapid_public_key": enrolled.get("vapid_public_key"),
        "credential": key.to_dict(),
    }
    try:
        KeyStore.create(state.store, pin, data, kdf=state.kdf)
    except OSError as exc:
        fail(
            f"The key was registered, but the key store could not be written ({exc}). "
            "Remove this device on your account page and set it up again."
        )


def sign(state: State, device: Device, pin: str, challenge: bytes) -> dict[str, Any]:
    """An assertion with user verification (the PIN opened the store) over
    ``challenge``. The key store is saved before the caller sends it: the
    signature counter has moved, and a counter the server may have seen must
    never be reused."""
    key = CredentialKey.from_dict(device.data["credential"])
    assertion = get_assertion(
        key=key, rp_id=str(device.data["rp_id"]), origin=device.server, challenge=challenge
    )
    device.data["credential"] = key.to_dict()
    KeyStore.save(state.store, pin, device.data, kdf=state.kdf)
    return assertion


def signed_action(
    state: State, device: Device, pin: str, purpose: str, payload: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """A signed action (docs/device-api.md "Signed actions"): a single-use
    nonce for ``purpose`` and an assertion over ``action_challenge(purpose,
    payload + nonce)``; both go into the action's request."""
    # Imported here: idp.webauthn brings the server's packages along, which
    # only the commands that sign need.
    from idp.webauthn import action_challenge

    nonce = device.api.action_nonce(purpose)
    challenge = action_challenge(purpose=purpose, payload={**payload, "nonce": nonce})
    return nonce, sign(state, device, pin, challenge)
