"""``idp-device``: the CLI device, a stand-in for the Freigabe phone app.

It enrols ("register key", "complete key registration"), lists the pending
sign-in requests (the app's "Freigabe" tab) and answers them with a WebAuthn
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
marked as pending), ``rename``, ``delete``, ``refuse`` (veto a pending restored
device) and ``notices`` ("a new device was added ...", "a device was removed ...").

Input: prompts on a terminal. When stdin is not a terminal every prompt reads
the next line of stdin instead (no echo, no confirmation), so scripts can pipe
answers in. The PIN comes from ``--pin-stdin`` (the first line of stdin), else
``IDP_DEVICE_PIN``, else a hidden prompt on a terminal.

Output: listings with ``--json`` print one JSON document on stdout; messages
for people go to stderr; errors exit with status 1 (2 for usage errors).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import click

from .api import ApiError, ClientError, DeviceApi, NetworkError, normalise_server_url
from .authenticator import AuthenticatorError, CredentialKey, create_credential, get_assertion
from .keystore import MIN_PIN_LENGTH, KeyStore, KeyStoreError, WrongPin

STORE_VERSION = 1
KINDS = ("iphone", "ipad", "android", "browser", "cli")
PIN_ENV = "IDP_DEVICE_PIN"
STORE_ENV = "IDP_DEVICE_STORE"
SERVER_ENV = "IDP_DEVICE_SERVER"  # restore: the server, when --server is not given
LINK_SCHEME = "freigabe"
# Ids are base64url and may begin with "-": taken as the argument, not as an option.
ID_ARGUMENT = {"ignore_unknown_options": True}
# Reconnecting to the event stream after a failure: from 1 s up to a minute.
RECONNECT_DELAYS = (1, 2, 5, 10, 30, 60)


def default_store() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "freigabe-device" / "device.json"


def pending_path(store: Path) -> Path:
    """Where ``enrol --no-wait`` keeps the enrolment until ``enrol-complete``."""
    return store.with_name(store.name + ".pending")


# --- messages per error code (docs/device-api.md); the text is never parsed ------------

MESSAGES = {
    "invalid_credentials": "The access number / e-mail or the password is not correct.",
    "ambiguous_email": (
        "This e-mail address belongs to several accounts: sign in with your access number."
    ),
    "account_locked": "This account is locked. Please contact support.",
    "password_change_required": (
        "An administrator asked you to choose a new password: sign in on the web first."
    ),
    "too_many_attempts": "Too many attempts.",
    "invalid_binding_code": "The binding code is not valid or has expired.",
    "invalid_enrolment": (
        "This key registration is unknown or has expired. Please start again with "
        "'idp-device enrol'."
    ),
    "wrong_code": "The confirmation code is not correct.",
    "webauthn_failed": "The server did not accept this device's signature.",
    "approval_not_found": "There is no such sign-in request.",
    "approval_expired": "This sign-in request has expired.",
    "approval_already_answered": "This sign-in request has already been answered.",
    "approvals_blocked": "Sign-in confirmations for this account are paused for a while.",
    "too_many_approvals": "Too many sign-in confirmations were requested.",
    "invalid_token": (
        "The server does not recognise this device (unknown device token). Enrol it again."
    ),
    "device_revoked": "This device has been removed from your account.",
    "device_pending": (
        "This device was added by restoration and can be used once its waiting period "
        "has passed; meanwhile your other devices may refuse it."
    ),
    "device_not_found": "There is no such device on your account.",
    "device_not_pending": (
        "This device can no longer be refused: its waiting period has passed. Delete it "
        "instead ('idp-device delete DEVICE_ID')."
    ),
    "restore_failed": (
        "The identity could not be restored: the login ID or a restoration code is not "
        "correct, or the restoration has expired. Check them and start again with "
        "'idp-device restore'."
    ),
    "restoration_not_active": (
        "Restoration is not active for your ID. Activate it with 'idp-device restoration activate'."
    ),
    "restoration_already_active": (
        "Restoration is already active for your ID. For a new restoration code 1 use "
        "'idp-device restoration regenerate'."
    ),
    "email_required": (
        "Your account has no e-mail address: give the one the second restoration code "
        "should be sent to (--email)."
    ),
    "email_mismatch": (
        "Your account already has another e-mail address; restoration codes are sent to "
        "that one. Leave out --email."
    ),
    "invalid_activation": (
        "This activation has expired. Please start again with 'idp-device restoration activate'."
    ),
    "delivery_failed": "The server could not send the e-mail. Please try again later.",
    "invalid_nonce": "The confirmation expired before it was sent. Please try again.",
    "invalid_request": "The server refused the request as invalid.",
    "temporarily_unavailable": "The service is temporarily unavailable. Try again in a moment.",
    "server_error": "The server had an internal error.",
    "unexpected_response": "The server's answer is not a Freigabe device API answer.",
}
APPROVAL_MESSAGES = {
    **MESSAGES,
    "wrong_code": "The number does not match the one shown in the browser.",
    "too_many_attempts": "Too many wrong numbers. Please wait before trying again.",
}
RESTORE_MESSAGES = {
    **MESSAGES,
    "too_many_attempts": "Too many failed restoration attempts for this ID or from here.",
    "webauthn_failed": (
        "The server did not accept the new key; the restoration is used up. Please start "
        "again with 'idp-device restore'."
    ),
}
ACTIVATION_MESSAGES = {
    **MESSAGES,
    "invalid_request": "The server refused the request: the e-mail address is not valid.",
    "too_many_attempts": (
        "Too many wrong confirmation codes: the activation is void. Please start again."
    ),
}


def describe_error(exc: ApiError, messages: Mapping[str, str] = MESSAGES) -> str:
    text = messages.get(exc.error)
    if text is None:
        detail = f": {exc.description}" if exc.description else ""
        text = f"The server refused the request ({exc.error}, HTTP {exc.status}){detail}."
    if exc.retry_after:
        text += f" Try again in {exc.retry_after} seconds."
    return text


# --- context: the store, the PIN, and input from a terminal or from stdin --------------


@dataclass
class Device:
    """What the key store holds."""

    data: dict[str, Any]

    @property
    def server(self) -> str:
        return str(self.data["server"])

    @cached_property
    def api(self) -> DeviceApi:
        return DeviceApi(self.server, token=str(self.data["device_token"]))


@dataclass
class State:
    store: Path
    pin_stdin: bool
    _stdin_pin: str | None = None
    messages: Mapping[str, str] = field(default_factory=lambda: MESSAGES)

    @property
    def interactive(self) -> bool:
        return sys.stdin.isatty()

    def read_line(self, label: str) -> str:
        """One line of stdin (not a terminal): the answer to ``label``."""
        click.echo(f"{label}:", err=True)
        line = sys.stdin.readline()
        if not line:
            raise click.ClickException(f"stdin ended before {label.lower()} was given")
        return line.rstrip("\r\n")

    def ask(self, label: str, *, hidden: bool = False, allow_empty: bool = False) -> str:
        if not self.interactive:
            value = self.read_line(label)
        elif allow_empty:
            value = click.prompt(label, default="", show_default=False, hide_input=hidden, err=True)
        else:
            value = click.prompt(label, hide_input=hidden, err=True)
        value = value.strip()
        if not value and not allow_empty:
            raise click.ClickException(f"{label} is empty")
        return str(value)

    def ask_if_possible(self, label: str) -> str | None:
        """Like ``ask``, but ``None`` instead of an error when stdin is not a
        terminal and has no further line: a question a script need not answer."""
        if self.interactive:
            return str(click.prompt(label, default="", show_default=False, err=True)).strip()
        line = sys.stdin.readline()
        if not line:
            return None
        click.echo(f"{label}:", err=True)
        return line.strip()

    def take_stdin_pin(self) -> None:
        """``--pin-stdin``: the PIN is the first line of stdin, read before anything else."""
        if self.pin_stdin:
            line = sys.stdin.readline()
            if not line.rstrip("\r\n"):
                raise click.UsageError("--pin-stdin: the first line of stdin is empty")
            self._stdin_pin = line.rstrip("\r\n")

    def _given_pin(self) -> str | None:
        return self._stdin_pin if self._stdin_pin is not None else os.environ.get(PIN_ENV) or None

    def pin(self) -> str:
        """The PIN that unlocks the key store."""
        pin = self._given_pin()
        if pin is not None:
            return pin
        if not self.interactive:
            raise click.ClickException(
                f"no PIN: stdin is not a terminal; use --pin-stdin or {PIN_ENV}"
            )
        return str(click.prompt("PIN", hide_input=True, err=True))

    def check_new_pin(self) -> None:
        """Fail now if ``new_pin`` could not get a PIN (before anything is sent)."""
        if self._given_pin() is None and not self.interactive:
            raise click.ClickException(
                f"no PIN: stdin is not a terminal; use --pin-stdin or {PIN_ENV}"
            )

    def new_pin(self) -> str:
        """A new PIN (asked twice on a terminal)."""
        self.check_new_pin()
        pin = self._given_pin()
        while True:
            if pin is None:
                pin = str(
                    click.prompt(
                        "Choose a PIN for this device's key",
                        hide_input=True,
                        confirmation_prompt="Repeat the PIN",
                        err=True,
                    )
                )
            if len(pin) >= MIN_PIN_LENGTH:
                return pin
            if not self.interactive or self._given_pin() is not None:
                raise click.ClickException(f"the PIN needs at least {MIN_PIN_LENGTH} characters")
            click.echo(f"The PIN needs at least {MIN_PIN_LENGTH} characters.", err=True)
            pin = None

    def unlock(self) -> tuple[Device, str]:
        """The key store's contents and the PIN that opened them. A wrong PIN
        fails here, before anything is sent."""
        if not KeyStore.exists(self.store):
            raise click.ClickException(
                f"no key store at {self.store}: enrol this device first ('idp-device enrol')"
            )
        pin = self.pin()
        data = KeyStore.unlock(self.store, pin)
        if data.get("version") != STORE_VERSION or "device_token" not in data:
            raise click.ClickException(f"{self.store} is not an idp-device key store")
        return Device(data), pin


def say(message: str) -> None:
    click.echo(message, err=True)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


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
@click.version_option(package_name="freigabe", prog_name="idp-device")
@click.pass_context
def main(ctx: click.Context, store: Path | None, pin_stdin: bool) -> None:
    """The Freigabe CLI device: confirm sign-ins like the phone app does.

    Set up with 'enrol', or with 'restore' from another device's ID
    ('restoration activate' there first); manage the account's devices with
    'devices', 'rename', 'delete', 'refuse' and 'notices'.
    """
    state = State(store=(store or default_store()).expanduser(), pin_stdin=pin_stdin)
    ctx.obj = state
    state.take_stdin_pin()


pass_state = click.make_pass_decorator(State)


# --- enrolment -------------------------------------------------------------------------


def parse_link(link: str) -> tuple[str, str]:
    """``freigabe://enrol?server=ISSUER&code=CODE`` (the account page's QR code)."""
    parts = urlsplit(link.strip())
    params = parse_qs(parts.query)
    server, code = params.get("server", [""])[0], params.get("code", [""])[0]
    if parts.scheme != LINK_SCHEME or parts.netloc != "enrol" or not server or not code:
        raise click.BadParameter(
            f"expected {LINK_SCHEME}://enrol?server=...&code=...", param_hint="--link"
        )
    return server, code


def default_device_name() -> str:
    return f"{socket.gethostname() or 'this computer'} (idp-device)"[:100]


def _origin_and_rp_id(server: str, public_key: Mapping[str, Any]) -> tuple[str, str]:
    rp = public_key.get("rp")
    rp_id = rp.get("id") if isinstance(rp, Mapping) else None
    return server, str(rp_id or urlsplit(server).hostname or "")


def _register(
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
    origin, rp_id = _origin_and_rp_id(api.server, public_key)
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
    _create_store(state, pin, server=api.server, rp_id=rp_id, key=key, enrolled=enrolled)
    device, user = enrolled["device"], enrolled["user"]
    say(
        f"Key registered: device {device.get('name')!r} ({device.get('id')}) for access number "
        f"{user.get('access_number')}. The key store is {state.store}."
    )


def _create_store(
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
        KeyStore.create(state.store, pin, data)
    except OSError as exc:
        fail(
            f"The key was registered, but the key store could not be written ({exc}). "
            "Remove this device on your account page and set it up again."
        )


def _say_confirmation(started: Mapping[str, Any]) -> None:
    confirmation = started.get("confirmation")
    if isinstance(confirmation, Mapping):
        channel = "SMS" if confirmation.get("channel") == "sms" else "e-mail"
        say(f"A confirmation code was sent by {channel} to {confirmation.get('destination')}.")


@main.command()
@click.option("--server", help="The Freigabe server (its issuer URL).")
@click.option("--identifier", help="Access number or e-mail address (path A).")
@click.option("--binding-code", help="A binding code from the account page (path B).")
@click.option("--link", help="The account page's link: freigabe://enrol?server=...&code=...")
@click.option("--name", "device_name", help="Name of this device [the host name].")
@click.option("--kind", type=click.Choice(KINDS), default="cli", show_default=True)
@click.option(
    "--code",
    "confirmation_code",
    help="The confirmation code, if it is already known (path A).",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="Path A: stop after the code was sent; print the enrolment id and "
    "finish with 'enrol-complete'.",
)
@pass_state
def enrol(
    state: State,
    server: str | None,
    identifier: str | None,
    binding_code: str | None,
    link: str | None,
    device_name: str | None,
    kind: str,
    confirmation_code: str | None,
    no_wait: bool,
) -> None:
    """Register this device's key with a Freigabe server.

    Path A: access number or e-mail and password ("register key"), then the
    confirmation code sent by SMS or e-mail ("complete key registration").
    Path B: a binding code (or the link of its QR code) from the account page.
    """
    if link:
        if binding_code:
            raise click.UsageError("give --binding-code or --link, not both")
        link_server, binding_code = parse_link(link)
        if server and normalise_url(server) != normalise_url(link_server):
            raise click.UsageError("--server and the server in --link differ")
        server = link_server
    if not server:
        raise click.UsageError("--server is required (or --link)")
    if binding_code and (identifier or confirmation_code or no_wait):
        raise click.UsageError("a binding code (path B) takes no --identifier, --code or --no-wait")
    if no_wait and confirmation_code:
        raise click.UsageError("--no-wait and --code exclude each other")
    if KeyStore.exists(state.store):
        fail(
            f"a key store exists at {state.store}: this device is enrolled already "
            "(use --store for another one)"
        )
    api = DeviceApi(normalise_url(server))
    name = device_name or default_device_name()

    # The PIN first: nothing on the server is started for a key that could not be stored.
    pin = state.new_pin()
    if binding_code:
        say("Registering key …")
        started = api.start_enrolment_with_binding_code(
            binding_code=binding_code, device_name=name, kind=kind
        )
        _register(
            api,
            state,
            pin=pin,
            enrolment_id=started["enrolment_id"],
            public_key=started["public_key"],
            code=None,
            code_given=False,
        )
        return

    identifier = identifier or state.ask("Access number or e-mail")
    password = state.ask("Password", hidden=True)
    say("Registering key …")
    started = api.start_enrolment_with_password(
        identifier=identifier, password=password, device_name=name, kind=kind
    )
    _say_confirmation(started)
    if no_wait:
        expires_in = started.get("expires_in")
        KeyStore.save(
            pending_path(state.store),
            pin,
            {
                "version": STORE_VERSION,
                "pending_enrolment": {
                    "server": api.server,
                    "enrolment_id": started["enrolment_id"],
                    "public_key": started["public_key"],
                    "confirmation": started.get("confirmation"),
                    "expires_at": (
                        int(time.time()) + expires_in if isinstance(expires_in, int) else None
                    ),
                },
            },
        )
        say("Finish with: idp-device enrol-complete --code CODE (with the same PIN).")
        click.echo(started["enrolment_id"])
        return
    code = confirmation_code or state.ask("Confirmation code")
    _register(
        api,
        state,
        pin=pin,
        enrolment_id=started["enrolment_id"],
        public_key=started["public_key"],
        code=code,
        code_given=confirmation_code is not None,
    )


def normalise_url(url: str) -> str:
    try:
        return normalise_server_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--server") from None


@main.command("enrol-complete")
@click.option("--code", "confirmation_code", help="The confirmation code from the SMS / e-mail.")
@pass_state
def enrol_complete(state: State, confirmation_code: str | None) -> None:
    """Finish an 'enrol --no-wait' with the confirmation code ("complete key registration")."""
    path = pending_path(state.store)
    if not KeyStore.exists(path):
        fail(f"no pending enrolment at {path}: start with 'idp-device enrol --no-wait'")
    if KeyStore.exists(state.store):
        fail(f"a key store exists at {state.store}: this device is enrolled already")
    pin = state.pin()
    pending = KeyStore.unlock(path, pin).get("pending_enrolment")
    if not isinstance(pending, dict):
        fail(f"{path} does not hold a pending enrolment")
    expires_at = pending.get("expires_at")
    if isinstance(expires_at, int) and time.time() > expires_at:
        KeyStore.wipe(path)
        fail(f"{MESSAGES['invalid_enrolment']} (The pending enrolment expired.)")
    code = confirmation_code or state.ask("Confirmation code")
    api = DeviceApi(pending["server"])
    try:
        _register(
            api,
            state,
            pin=pin,
            enrolment_id=pending["enrolment_id"],
            public_key=pending["public_key"],
            code=code,
            code_given=confirmation_code is not None,
        )
    except ApiError as exc:
        if exc.error in ("invalid_enrolment", "too_many_attempts"):
            KeyStore.wipe(path)  # void on the server: start again
        raise
    KeyStore.wipe(path)


# --- approvals ("Freigabe") ----------------------------------------------------------


def local_time(value: Any) -> str:
    """An API timestamp (``2026-11-23T10:00:00Z``) in local time."""
    if not isinstance(value, str):
        return "-"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _shown(approval: Mapping[str, Any]) -> Mapping[str, Any]:
    """What to show of an approval: its signed context, where the server put
    the same facts (client name, IP, time) the signature will cover."""
    context = approval.get("context")
    return context if isinstance(context, Mapping) else approval


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_state
def approvals(state: State, as_json: bool) -> None:
    """List the pending sign-in requests (the app's "Freigabe" tab)."""
    device, _pin = state.unlock()
    found = device.api.approvals()
    if as_json:
        emit_json({"approvals": found})
        return
    if not found:
        say("No sign-in requests are waiting.")
        return
    table(
        [
            [
                str(a.get("id")),
                str(_shown(a).get("client_name")),
                str(_shown(a).get("ip") or "-"),
                local_time(_shown(a).get("created_at")),
                local_time(a.get("expires_at")),
            ]
            for a in found
        ],
        ["ID", "APPLICATION", "IP", "TIME", "EXPIRES"],
    )


def show_approval(approval: Mapping[str, Any]) -> None:
    shown = _shown(approval)
    say(
        f"Sign-in to {shown.get('client_name')} from {shown.get('ip') or 'an unknown address'}"
        f" at {local_time(shown.get('created_at'))}"
    )
    if shown.get("user_agent"):
        say(f"  browser: {shown.get('user_agent')}")


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
    KeyStore.save(state.store, pin, device.data)
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


def answer_approval(
    state: State,
    device: Device,
    pin: str,
    approval: Mapping[str, Any],
    *,
    decision: str,
    code: str,
    fraud: bool = False,
) -> str:
    """Sign the decision over the approval's context and send it; the new status."""
    from idp.webauthn import approval_challenge  # see signed_action

    approval_id = str(approval["id"])
    if decision == "deny":
        code = ""  # deny signs the empty code (docs/device-api.md)
    context = approval.get("context")
    if not isinstance(context, Mapping):
        raise ApiError(status=200, error="unexpected_response")
    challenge = approval_challenge(
        approval_id=approval_id,
        decision="approve" if decision == "approve" else "deny",
        code=code,
        context=context,
    )
    assertion = sign(state, device, pin, challenge)
    return device.api.answer(
        approval_id, decision=decision, code=code, fraud=fraud, assertion=assertion
    )


def _pending(device: Device, approval_id: str) -> dict[str, Any]:
    approval = device.api.approval(approval_id)
    if approval.get("id") != approval_id:
        raise ApiError(status=200, error="unexpected_response")
    status = approval.get("status")
    if status != "pending":
        fail(f"This sign-in request is no longer waiting (it is {status}).")
    return approval


def _report(status: str, approval: Mapping[str, Any], *, fraud: bool = False) -> None:
    name = _shown(approval).get("client_name")
    if status == "approved":
        say(f"Sign-in to {name} confirmed. The browser continues by itself.")
    elif fraud:
        say(f"Sign-in to {name} refused and reported as not made by you.")
    else:
        say(f"Sign-in to {name} refused.")


@main.command(context_settings=ID_ARGUMENT)
@click.argument("approval_id")
@click.option("--code", help="The number shown in the browser.")
@pass_state
def approve(state: State, approval_id: str, code: str | None) -> None:
    """Confirm the sign-in request APPROVAL_ID with the number shown in the browser."""
    state.messages = APPROVAL_MESSAGES
    device, pin = state.unlock()
    approval = _pending(device, approval_id)
    show_approval(approval)
    code = code if code is not None else state.ask("Number shown in the browser")
    status = answer_approval(state, device, pin, approval, decision="approve", code=code.strip())
    _report(status, approval)
    if status == "approved":
        offer_backup(state, device, pin)


@main.command(context_settings=ID_ARGUMENT)
@click.argument("approval_id")
@click.option("--fraud", is_flag=True, help="Report the sign-in as not made by you.")
@pass_state
def deny(state: State, approval_id: str, fraud: bool) -> None:
    """Refuse the sign-in request APPROVAL_ID (with --fraud: and report it)."""
    state.messages = APPROVAL_MESSAGES
    device, pin = state.unlock()
    approval = _pending(device, approval_id)
    show_approval(approval)
    status = answer_approval(state, device, pin, approval, decision="deny", code="", fraud=fraud)
    _report(status, approval, fraud=fraud)


@contextmanager
def _not_fatal() -> Iterator[None]:
    """Inside ``watch``: a refused answer is reported, the watch goes on; a
    revoked or unknown device ends it."""
    try:
        yield
    except ApiError as exc:
        if exc.error in ("device_revoked", "invalid_token"):
            raise
        say(describe_error(exc, APPROVAL_MESSAGES))


@main.command()
@click.option("--once", is_flag=True, help="Exit after one sign-in request was answered.")
@pass_state
def watch(state: State, once: bool) -> None:
    """Wait for sign-in requests and answer each one (empty number = refuse)."""
    state.messages = APPROVAL_MESSAGES
    device, pin = state.unlock()  # once, as a phone app stays unlocked while open
    api = device.api
    seen: set[str] = set()

    def handle(approval_id: str) -> bool:
        """Ask about one approval; True once it was answered."""
        if approval_id in seen:
            return False
        seen.add(approval_id)
        approval = api.approval(approval_id)
        if approval.get("status") != "pending" or approval.get("id") != approval_id:
            return False
        click.echo("", err=True)
        show_approval(approval)
        while True:
            code = state.ask("Number shown in the browser (empty: refuse)", allow_empty=True)
            decision = "approve" if code else "deny"
            try:
                # Re-read: another command may have moved the counter meanwhile.
                current = Device(KeyStore.unlock(state.store, pin))
                status = answer_approval(
                    state, current, pin, approval, decision=decision, code=code
                )
            except ApiError as exc:
                if exc.error != "wrong_code":
                    raise
                say(describe_error(exc, APPROVAL_MESSAGES))
                continue
            _report(status, approval)
            if status == "approved":
                offer_backup(state, current, pin)
            return True

    failures = 0
    say(f"Waiting for sign-in requests from {device.server} (Ctrl-C to stop) …")
    while True:
        try:
            for event in api.events():
                failures = 0
                if event.event == "open":
                    # Connected: whatever was already waiting, oldest first. Ids
                    # the stream announces again are skipped (``seen``).
                    for approval in reversed(api.approvals()):
                        with _not_fatal():
                            if handle(str(approval.get("id"))) and once:
                                return
                elif event.event == "approval":
                    try:
                        approval_id = str(event.json()["id"])
                    except (ValueError, KeyError, TypeError):
                        continue
                    with _not_fatal():
                        if handle(approval_id) and once:
                            return
        except NetworkError as exc:
            delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
            failures += 1
            say(f"{exc}; reconnecting in {delay} s …")
            time.sleep(delay)
        except ApiError as exc:
            if exc.error in ("device_revoked", "invalid_token") or exc.status < 500:
                raise
            delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
            failures += 1
            say(f"{describe_error(exc, APPROVAL_MESSAGES)} Reconnecting in {delay} s …")
            time.sleep(delay)
        # The server ends the stream now and then: listen again at once.


# --- the device ----------------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_state
def devices(state: State, as_json: bool) -> None:
    """List the devices of your account.

    A device added by restoration is "pending" while it waits out the veto
    window: until then it cannot be used, and 'idp-device refuse' removes it.
    With --json each device also has "pending_until" (null when not pending).
    """
    device, _pin = state.unlock()
    found = device.api.devices()
    pending = {str(d.get("id")): d.get("pending_until") for d in _pending_devices(device)}
    for listed in found:
        listed["pending_until"] = pending.get(str(listed.get("id")))
    if as_json:
        emit_json({"devices": found})
        return
    table(
        [
            [
                ("* " if d.get("this_device") else "  ") + str(d.get("name")),
                str(d.get("kind")),
                str(d.get("enrolled_via")),
                local_time(d.get("created_at")),
                local_time(d.get("last_used_at")),
                f"pending until {local_time(d['pending_until'])}"
                if d.get("pending_until")
                else "active",
                str(d.get("id")),
            ]
            for d in found
        ],
        ["  NAME", "KIND", "ENROLLED VIA", "CREATED", "LAST USED", "STATUS", "ID"],
    )


@main.command(context_settings=ID_ARGUMENT)
@click.argument("device_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def delete(state: State, device_id: str, yes: bool) -> None:
    """Delete the device DEVICE_ID from your account (this one too: un-enrol).

    The device is removed at once: its sign-in confirmations stop and its
    token no longer works. Signed with this device's key (the PIN).
    """
    device, pin = state.unlock()
    api = device.api
    found = api.devices()
    target = next((d for d in found if d.get("id") == device_id), None)
    if target is None:
        raise ApiError(status=404, error="device_not_found")
    this = bool(target.get("this_device"))
    say(f"Delete {'this device' if this else 'the device'} {target.get('name')!r} ({device_id}).")
    if len(found) == 1:
        say(
            "Warning: this is the last device of your account. Until you set up another "
            "one, you cannot confirm sign-ins, and applications that require a "
            "confirmation will refuse you."
        )
    if not yes:
        answer = state.ask("Type 'yes' to delete it", allow_empty=True)
        if answer.lower() not in ("yes", "y"):
            fail("Nothing was deleted.")
    nonce, assertion = signed_action(state, device, pin, "delete_device", {"device": device_id})
    api.delete_device(device_id, nonce=nonce, assertion=assertion)
    if this:
        KeyStore.wipe(state.store)
        say(f"This device was deleted from your account; its key store {state.store} was wiped.")
    else:
        say(f"The device {target.get('name')!r} was deleted from your account.")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_state
def status(state: State, as_json: bool) -> None:
    """Show this device and its account, as the server knows them."""
    device, _pin = state.unlock()
    answer = device.api.status()
    if as_json:
        emit_json({"server": device.server, "store": str(state.store), **answer})
        return
    this, user = answer.get("device") or {}, answer.get("user") or {}
    rows = [
        ("server", device.server),
        ("key store", str(state.store)),
        ("device", f"{this.get('name')} ({this.get('kind')}, {this.get('id')})"),
        ("enrolled", local_time(this.get("created_at"))),
        ("last used", local_time(this.get("last_used_at"))),
        ("access number", str(user.get("access_number"))),
        ("e-mail", str(user.get("email") or "-")),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':<15} {value}")


# --- managing devices: rename, refuse, notices -----------------------------------------


@main.command(context_settings=ID_ARGUMENT)
@click.argument("device_id")
@click.argument("name")
@pass_state
def rename(state: State, device_id: str, name: str) -> None:
    """Give the device DEVICE_ID (this one too) the new NAME (1 to 100 characters)."""
    state.messages = {
        **MESSAGES,
        "invalid_request": "The server refused the name: it must have 1 to 100 characters.",
    }
    device, pin = state.unlock()
    renamed = device.api.rename_device(device_id, name)
    if renamed.get("this_device"):
        device.data["device"] = {**device.data["device"], "name": renamed.get("name")}
        KeyStore.save(state.store, pin, device.data)
    say(f"The device {device_id} is now called {renamed.get('name')!r}.")


def _pending_devices(device: Device) -> list[Mapping[str, Any]]:
    """Restored devices still in their veto window (``GET /restoration``)."""
    found = device.api.restoration().get("pending_devices")
    return [d for d in found if isinstance(d, Mapping)] if isinstance(found, list) else []


@main.command(context_settings=ID_ARGUMENT)
@click.argument("device_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def refuse(state: State, device_id: str, yes: bool) -> None:
    """Refuse DEVICE_ID, a device added by restoration that is still pending.

    "This was not me": the device is removed at once, and the restoration code
    1 it was shown is void (activate restoration again afterwards). After its
    waiting period a device can only be deleted ('idp-device delete').
    Signed with this device's key (the PIN).
    """
    device, pin = state.unlock()
    target = next((d for d in _pending_devices(device) if d.get("id") == device_id), None)
    if target is None:
        listed = any(d.get("id") == device_id for d in device.api.devices())
        raise ApiError(
            status=409 if listed else 404,
            error="device_not_pending" if listed else "device_not_found",
        )
    say(
        f"Refuse the device {target.get('name')!r} ({device_id}), added by restoration and "
        f"pending until {local_time(target.get('pending_until'))}."
    )
    if not yes:
        answer = state.ask("Type 'yes' to refuse it", allow_empty=True)
        if answer.lower() not in ("yes", "y"):
            fail("Nothing was refused.")
    nonce, assertion = signed_action(state, device, pin, "refuse_device", {"device": device_id})
    refused = device.api.refuse_device(device_id, nonce=nonce, assertion=assertion)
    say(f"The device {refused['device'].get('name')!r} was refused and removed from your account.")
    if not refused.get("restoration_active"):
        say(
            "The restoration code 1 it was shown is void: restoration is off until you "
            "activate it again ('idp-device restoration activate')."
        )


def _moment(value: Any) -> datetime | None:
    """An API timestamp as an aware datetime, or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# How a device was added (the "via" of a device_added notice).
ADDED_VIA = {
    "password_sms": "with the password and a code sent by text message",
    "password_email": "with the password and a code sent by e-mail",
    "binding_code": "with a binding code from the account page",
    "restoration": "by restoration",
}


def _named(found: Any) -> str:
    about: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return f"{about.get('name')!r} ({about.get('kind')})"


def _removed_by(notice: Mapping[str, Any], this_device: str | None) -> str:
    """Who removed the device of a device_removed notice, in words."""
    about = notice.get("device")
    by = notice.get("by_device")
    removed_id = about.get("id") if isinstance(about, Mapping) else None
    by_id = by.get("id") if isinstance(by, Mapping) else None
    if notice.get("removed_by") == "device" and by_id is not None:
        if by_id == removed_id:
            actor = "by the device itself"
        elif by_id == this_device:
            actor = "by this device"
        else:
            actor = f"by the device {_named(by)}"
        return f"refused {actor}" if notice.get("refused") else actor
    if notice.get("removed_by") == "account_page":
        return "on the account page"
    if notice.get("removed_by") == "administrator":
        return "by an administrator"
    return "by someone"


def describe_notice(
    notice: Mapping[str, Any], *, present: set[str], now: datetime, this_device: str | None = None
) -> list[str]:
    """A notice in words, with what to do if it was not the user."""
    when = local_time(notice.get("created_at"))
    found = notice.get("device")
    about: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    name, kind = about.get("name"), about.get("kind")
    ip = notice.get("ip") or "an unknown address"
    kind_of = notice.get("type")
    if kind_of == "restore_started":
        return [
            f"{when}  Someone started restoring your ID on a new device {name!r} ({kind}) "
            f"from {ip}; the second restoration code was e-mailed to you.",
            "    Not you? Then someone knows your restoration code 1: replace it with "
            "'idp-device restoration regenerate'.",
        ]
    if kind_of in ("device_added", "device_restored"):
        device_id = str(about.get("id"))
        via = notice.get("via") or ("restoration" if kind_of == "device_restored" else "")
        how = ADDED_VIA.get(str(via), "")
        lines = [
            f"{when}  A new device {name!r} ({kind}, {device_id}) was added"
            + (f" {how}" if how else "")
            + f" from {ip}."
        ]
        pending_until = _moment(notice.get("pending_until"))
        if device_id not in present:
            lines.append("    It is no longer on your account.")
        elif pending_until is not None and pending_until > now:
            lines.append(
                f"    It is pending until {local_time(notice.get('pending_until'))}. Not you? "
                f"Refuse it: 'idp-device refuse {device_id}' (or 'idp-device delete {device_id}')."
            )
        else:
            lines.append(f"    Not you? Remove it: 'idp-device delete {device_id}'.")
        return lines
    if kind_of == "device_removed":
        return [
            f"{when}  The device {name!r} ({kind}) was removed from your account "
            f"{_removed_by(notice, this_device)}, from {ip}.",
            "    Not you? Then someone else can manage your devices: check them with "
            "'idp-device devices' and remove any you do not know with 'idp-device delete ID'.",
        ]
    return [f"{when}  {kind_of}"]  # a notice this client does not know yet


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_state
def notices(state: State, as_json: bool) -> None:
    """Show the notices to this device, newest first (the last 7 days).

    "Someone is restoring your ID", "a new device was added", "a device was
    removed", each with what to do if it was not you.
    """
    device, _pin = state.unlock()
    api = device.api
    found = api.notices()
    if as_json:
        emit_json({"notices": found})
        return
    if not found:
        say("No notices.")
        return
    present: set[str] = set()
    if any(n.get("type") in ("device_added", "device_restored") for n in found):
        present = {str(d.get("id")) for d in api.devices()}
    this_device = device.data.get("device", {}).get("id")
    now = datetime.now(UTC)
    for notice in found:
        for line in describe_notice(notice, present=present, now=now, this_device=this_device):
            click.echo(line)


# --- restoration (DESIGN §5): the app's "Restoration settings" -----------------------


def _valid_for(expires_in: Any) -> str:
    return f" (valid for {max(1, expires_in // 60)} minutes)" if isinstance(expires_in, int) else ""


def show_code1(code: str, email_masked: Any, *, replaces: bool) -> None:
    """Restoration code 1, once: the code alone on stdout, the advice on stderr."""
    say("")
    say("Your restoration code 1 (shown only this once):")
    click.echo(code)
    say(
        "Write it down and keep it in a safe place. With it, and a second code the server "
        f"e-mails to {email_masked or 'your e-mail address'}, your ID can be restored on "
        "another device ('idp-device restore')."
    )
    if replaces:
        say("Your previous restoration code 1 is no longer valid: this one replaces it.")


def activate_restoration(
    state: State, device: Device, pin: str, *, found: Mapping[str, Any], email: str | None
) -> None:
    """Activation (SHOW, or the settings): the e-mail address when the account
    has none, the signed request, the mailed confirmation code if the address
    is not confirmed yet, then code 1 once."""
    state.messages = ACTIVATION_MESSAGES
    if found.get("active"):
        raise ApiError(status=409, error="restoration_already_active")
    email = email.strip() if email else None
    if email is None and not found.get("email_masked"):
        say(
            "Your account has no e-mail address. When you restore your ID on another "
            "device, the second restoration code is sent to the address you give now."
        )
        email = state.ask("E-mail address")
    nonce, assertion = signed_action(
        state, device, pin, "activate_restoration", {"email": email or ""}
    )
    answer = device.api.activate_restoration(nonce=nonce, assertion=assertion, email=email)
    if answer.get("status") == "email_confirmation_required":
        activation_id = str(answer["activation_id"])
        say(
            f"A confirmation code was sent by e-mail to {answer.get('email_masked')}"
            f"{_valid_for(answer.get('expires_in'))}."
        )
        while True:
            code = state.ask("Confirmation code from the e-mail")
            try:
                answer = device.api.confirm_activation(activation_id, code)
                break
            except ApiError as exc:
                # A wrong code may be typed again (the server allows a few tries).
                if exc.error != "wrong_code" or not state.interactive:
                    raise
                say(describe_error(exc, state.messages))
    say("Restoration is active.")
    show_code1(str(answer["restoration_code"]), answer.get("email_masked"), replaces=False)


def offer_backup(state: State, device: Device, pin: str) -> None:
    """ "Back up your identity", after a confirmed sign-in, when the server says
    so (from the sixth confirmed login until restoration is active or the
    question was dismissed). SHOW activates restoration; NOT NOW is remembered
    by the server and never asked again. A script that has no answer for it
    (stdin not a terminal, and at its end) is not asked, and nothing is dismissed."""
    try:
        found = device.api.restoration()
    except ClientError:
        return  # the sign-in is confirmed; the question can wait for the next one
    if not found.get("prompt_backup"):
        return
    hint = "activate it any time with 'idp-device restoration activate'."
    if state.interactive:
        say("")
        say(
            "Back up your identity: with restoration active you can use your ID on another "
            "device as well, or restore it when you lose this one."
        )
    while True:
        answer = state.ask_if_possible("Back up your identity now? [show/not now]")
        choice = " ".join((answer or "").lower().split())
        if answer is None:
            say(f"Back up your identity: restoration is not active; {hint}")
            return
        if choice in ("show", "s"):
            activate_restoration(state, device, pin, found=found, email=None)
            return
        if choice in ("not now", "n", "no"):
            device.api.dismiss_backup_prompt()
            say(f"Not now: you will not be asked again; {hint}")
            return
        if not state.interactive:
            say(f"Not understood ({answer!r}): restoration was not activated; {hint}")
            return
        say("Please answer 'show' or 'not now'.")


@main.group()
def restoration() -> None:
    """Restoration: use your ID on another device, or restore it after a loss.

    Activate it once on this device and write down restoration code 1. On the
    new device, 'idp-device restore' asks for your login ID, code 1, and a
    second code the server e-mails to you.
    """


@restoration.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_state
def restoration_status(state: State, as_json: bool) -> None:
    """Is restoration active, where do its codes go, which restored devices are pending."""
    device, _pin = state.unlock()
    found = device.api.restoration()
    if as_json:
        emit_json(found)
        return
    if found.get("active"):
        active = f"active since {local_time(found.get('activated_at'))}"
        if found.get("rotated_at") and found.get("rotated_at") != found.get("activated_at"):
            active += f" (code 1 replaced {local_time(found.get('rotated_at'))})"
    else:
        active = "not active (activate it with 'idp-device restoration activate')"
    email = found.get("email_masked")
    if email:
        email = f"{email} ({'confirmed' if found.get('email_confirmed') else 'not confirmed'})"
    for label, value in (("restoration", active), ("e-mail", email or "none")):
        click.echo(f"{label + ':':<15} {value}")
    for pending in _pending_devices(device):
        click.echo(
            f"{'pending:':<15} {pending.get('name')} ({pending.get('kind')}, {pending.get('id')}) "
            f"until {local_time(pending.get('pending_until'))}; not you? "
            f"'idp-device refuse {pending.get('id')}'"
        )


@restoration.command("activate")
@click.option(
    "--email", help="The address for restoration codes, if your account has none [asked]."
)
@pass_state
def restoration_activate(state: State, email: str | None) -> None:
    """Activate restoration ("Back up your identity"); show restoration code 1 once.

    An address that is not confirmed yet gets a confirmation code first, which
    is asked for. Signed with this device's key (the PIN).
    """
    device, pin = state.unlock()
    activate_restoration(state, device, pin, found=device.api.restoration(), email=email)


@restoration.command("regenerate")
@pass_state
def restoration_regenerate(state: State) -> None:
    """Replace restoration code 1 and show the new one once.

    The old code 1 is void at once, and so is every restoration started with
    it. Signed with this device's key (the PIN).
    """
    device, pin = state.unlock()
    nonce, assertion = signed_action(state, device, pin, "regenerate_restoration_code", {})
    answer = device.api.regenerate_restoration_code(nonce=nonce, assertion=assertion)
    say("A new restoration code 1 was made.")
    show_code1(str(answer["restoration_code"]), answer.get("email_masked"), replaces=True)


# --- restoring the ID on this device ("Restore identity") ---------------------------


@main.command()
@click.option(
    "--server",
    envvar=SERVER_ENV,
    help="The Freigabe server (its issuer URL) [env IDP_DEVICE_SERVER; else asked]. "
    "Any server, not only your usual one: 'restore identity on other server'.",
)
@click.option("--login-id", help="Your login ID: access number, user name or e-mail.")
@click.option("--code1", help="Restoration code 1, the one you wrote down.")
@click.option("--code2", help="Restoration code 2 from the e-mail [asked once it was sent].")
@click.option("--name", "device_name", help="Name of this device [the host name].")
@click.option("--kind", type=click.Choice(KINDS), default="cli", show_default=True)
@pass_state
def restore(
    state: State,
    server: str | None,
    login_id: str | None,
    code1: str | None,
    code2: str | None,
    device_name: str | None,
    kind: str,
) -> None:
    """Restore your identity on this device ("Restore identity").

    Restoration must be active (activated on a device that has the ID). Give
    your login ID and restoration code 1; the server e-mails restoration code 2;
    then this device registers its own key under a new PIN, and the ID works
    here as well as on your other devices, which are told. Code 1 is replaced:
    the new one is shown once at the end.
    """
    state.messages = RESTORE_MESSAGES
    if KeyStore.exists(state.store):
        fail(
            f"a key store exists at {state.store}: this device is set up already "
            "(use --store for another one)"
        )
    state.check_new_pin()
    api = DeviceApi(normalise_url(server or state.ask("Server URL")))
    name = device_name or default_device_name()
    login_id = login_id or state.ask("Login ID (access number, user name or e-mail)")
    code1 = code1 or state.ask("Restoration code 1")
    started = api.start_restore(login_id=login_id, code1=code1, device_name=name, kind=kind)
    restoration_id = str(started["restoration_id"])
    say(
        f"Restoration code 2 was sent by e-mail to {started.get('email_masked')}"
        f"{_valid_for(started.get('expires_in'))}."
    )
    code2 = code2 or state.ask("Restoration code 2 from the e-mail")
    public_key = api.verify_restore_code(restoration_id, code2)["public_key"]

    pin = state.new_pin()
    origin, rp_id = _origin_and_rp_id(api.server, public_key)
    key, credential = create_credential(options_json=public_key, origin=origin)
    say("Registering key …")
    restored = api.complete_restore(restoration_id, credential=credential)
    _create_store(state, pin, server=api.server, rp_id=rp_id, key=key, enrolled=restored)
    device, user = restored["device"], restored["user"]
    say(
        f"Identity restored: device {device.get('name')!r} ({device.get('id')}) for access "
        f"number {user.get('access_number')}. The key store is {state.store}."
    )
    if restored.get("status") == "pending":
        say(
            f"This device can be used from {local_time(restored.get('pending_until'))}. Until "
            "then your other devices may refuse it; if one does, this device is removed."
        )
    show_code1(str(restored["restoration_code"]), started.get("email_masked"), replaces=True)
