"""``idp-device``: the CLI device, a stand-in for the Freigabe phone app.

It enrols ("register key", "complete key registration"), lists the pending
sign-in requests (the app's "Freigabe" tab) and answers them with a WebAuthn
assertion over the signed decision (docs/device-api.md). The key store holds
everything (server URL, device id and token, credential key, user) encrypted
under a PIN, the CLI's stand-in for a fingerprint: a wrong PIN fails here and
never reaches the server.

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
from datetime import datetime
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
    "device_not_found": "There is no such device on your account.",
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

    @property
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

    def new_pin(self) -> str:
        """A new PIN (asked twice on a terminal)."""
        pin = self._given_pin()
        if pin is None and not self.interactive:
            raise click.ClickException(
                f"no PIN: stdin is not a terminal; use --pin-stdin or {PIN_ENV}"
            )
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
    """The Freigabe CLI device: confirm sign-ins like the phone app does."""
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
    data = {
        "version": STORE_VERSION,
        "server": api.server,
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
            "Remove this device on your account page and enrol again."
        )
    device, user = enrolled["device"], enrolled["user"]
    say(
        f"Key registered: device {device.get('name')!r} ({device.get('id')}) for access number "
        f"{user.get('access_number')}. The key store is {state.store}."
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
    """Sign the decision over the approval's context and send it; the new status.

    The key store is saved before the answer is sent: the signature counter
    has moved, and a counter the server may have seen must never be reused.
    """
    # Imported here: idp.webauthn brings the server's packages along, which
    # only the commands that sign need.
    from idp.webauthn import approval_challenge

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
    key = CredentialKey.from_dict(device.data["credential"])
    assertion = get_assertion(
        key=key, rp_id=str(device.data["rp_id"]), origin=device.server, challenge=challenge
    )
    device.data["credential"] = key.to_dict()
    KeyStore.save(state.store, pin, device.data)
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
    """List the devices of your account."""
    device, _pin = state.unlock()
    found = device.api.devices()
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
                str(d.get("id")),
            ]
            for d in found
        ],
        ["  NAME", "KIND", "ENROLLED VIA", "CREATED", "LAST USED", "ID"],
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
    from idp.webauthn import action_challenge

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
    nonce = api.action_nonce("delete_device")
    challenge = action_challenge(
        purpose="delete_device", payload={"device": device_id, "nonce": nonce}
    )
    key = CredentialKey.from_dict(device.data["credential"])
    assertion = get_assertion(
        key=key, rp_id=str(device.data["rp_id"]), origin=device.server, challenge=challenge
    )
    # The counter has moved: save it before the server sees it.
    device.data["credential"] = key.to_dict()
    KeyStore.save(state.store, pin, device.data)
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
