"""``idp-device``: the CLI device, a stand-in for the Freigabe phone app.

It enrols ("register key", "complete key registration"), lists the pending
sign-in requests (the app's "Approvals" tab) and answers them with a WebAuthn
assertion over the signed decision (docs/device-api.md). The key store holds
everything (server URL, device id and token, credential key, user) encrypted
under a PIN, the CLI's stand-in for a fingerprint: a wrong PIN fails here and
never reaches the server.

Restoration (DESIGN §5, docs/device-api.md "Restoration"), the app's
"Restoration settings" and "Restore identity":

- ``idp-device restoration status | activate | regenerate``: on an enrolled
  device, show whether restoration is active, activate it (the e-mail address
  confirmed with a mailed code when needed) or replace code 1; code 1 is
  printed once, on stdout, with the advice to write it down.
- ``idp-device restore``: put the ID on this (new) device with the login ID,
  code 1 and code 2 from the e-mail; the key store is the one ``enrol``
  writes, and the new code 1 (the old one is void) is printed once.
- After ``approve`` / ``watch`` confirmed a sign-in, "Back up your identity"
  is asked when the server says so (from the sixth confirmed login): SHOW
  activates restoration, NOT NOW is final.

Managing devices: ``devices`` (restored devices still in their veto window
marked as pending), ``rename``, ``delete`` (with ``--reason lost_or_stolen`` or
``--sign-out``: also sign out everywhere it confirmed a sign-in), ``refuse``
(veto a pending restored device) and ``notices`` ("a new device was added ...",
"a device was removed ..."). Where the account is signed in: ``sessions``,
``sessions end SID``, ``sessions end-all``.

Input: prompts on a terminal. When stdin is not a terminal every prompt reads
the next line of stdin instead (no echo, no confirmation), so scripts can pipe
answers in. The PIN comes from ``--pin-stdin`` (the first line of stdin), else
``IDP_DEVICE_PIN``, else a hidden prompt on a terminal.

Output: listings with ``--json`` print one JSON document on stdout; messages
for people go to stderr; errors exit with status 1 (2 for usage errors).

Layout: one module per command group (``enrol``, ``approvals``, ``devices``,
``notices``, ``restoration``); ``common`` holds the key store context and the
output helpers, ``keys`` registering and signing with this device's key,
``messages`` the words for each error code. This module is the group itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..api import ApiError, ClientError, NetworkError
from ..authenticator import AuthenticatorError
from ..keystore import DEFAULT_KDF, KDF_PROFILES, KeyStore, KeyStoreError, WrongPin
from . import approvals, devices, enrol, notices, restoration
from .common import KDF_ENV, PIN_ENV, STORE_ENV, State, default_store, fail
from .messages import MESSAGES, describe_error

__all__ = ["main"]


class DeviceGroup(click.Group):
    """Turns the client's exceptions into one clear message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WrongPin:
            fail("Wrong PIN. The key store stays locked; nothing was sent to the server.")
        except KeyStoreError as exc:
            fail(str(exc))
        except NetworkError as exc:
            fail(f"{exc}. Check the connection and try again.")
        except ApiError as exc:
            state: State | None = ctx.obj
            messages = state.messages if state else MESSAGES
            if exc.error == "device_revoked" and state is not None:
                KeyStore.wipe(state.store)
                fail(f"{describe_error(exc, messages)} The local key store was wiped.")
            fail(describe_error(exc, messages))
        except AuthenticatorError as exc:
            fail(f"The key refused to sign: {exc}")
        except ClientError as exc:
            fail(str(exc))


@click.group(cls=DeviceGroup)
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=STORE_ENV,
    default=None,
    help="The key store file [env IDP_DEVICE_STORE; default "
    "~/.config/freigabe-device/device.json].",
)
@click.option(
    "--pin-stdin",
    is_flag=True,
    help=f"Read the PIN from the first line of stdin (or set {PIN_ENV}).",
)
@click.option(
    "--kdf",
    type=click.Choice(list(KDF_PROFILES)),
    envvar=KDF_ENV,
    default=DEFAULT_KDF,
    show_default=True,
    help="The Argon2id parameters the key store is saved with [env IDP_DEVICE_KDF]. "
    "'cheapest' is for test key stores only: a PIN under it is guessed in moments.",
)
@click.version_option(package_name="freigabe", prog_name="idp-device")
@click.pass_context
def main(ctx: click.Context, store: Path | None, pin_stdin: bool, kdf: str) -> None:
    """The Freigabe CLI device: confirm sign-ins like the phone app does.

    Set up with 'enrol', or with 'restore' from another device's ID
    ('restoration activate' there first); manage the account's devices with
    'devices', 'rename', 'delete', 'refuse' and 'notices', and where it is
    signed in with 'sessions'.
    """
    state = State(store=(store or default_store()).expanduser(), pin_stdin=pin_stdin, kdf=kdf)
    ctx.obj = state
    state.take_stdin_pin()


for command in (
    enrol.enrol,
    enrol.enrol_complete,
    approvals.approvals,
    approvals.approve,
    approvals.deny,
    approvals.watch,
    devices.devices,
    devices.status,
    devices.rename,
    devices.delete,
    devices.refuse,
    devices.sessions,
    notices.notices,
    restoration.restoration,
    restoration.restore,
):
    main.add_command(command)
