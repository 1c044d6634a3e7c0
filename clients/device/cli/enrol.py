"""``idp-device enrol`` and ``enrol-complete``: register this device's key."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click

from ..api import ApiError, DeviceApi
from ..keystore import KeyStore
from .common import KINDS, STORE_VERSION, State, fail, normalise_url, pass_state, pending_path, say
from .keys import default_device_name, register_key
from .messages import MESSAGES

LINK_SCHEME = "freigabe"
# The browser device app's path below the issuer (idp.devices.APP_PATH).
APP_PATH = "/app/"
LINK_FORMS = f"ISSUER{APP_PATH}#code=CODE or {LINK_SCHEME}://enrol?server=ISSUER&code=CODE"


def parse_link(link: str) -> tuple[str, str]:
    """The server and the binding code in the account page's link.

    ``https://ISSUER/app/#code=CODE`` (its QR code since the browser device app
    reads it; the code may also be a query parameter), or the earlier
    ``freigabe://enrol?server=ISSUER&code=CODE``.
    """
    parts = urlsplit(link.strip())
    if parts.scheme == LINK_SCHEME and parts.netloc == "enrol":
        params = parse_qs(parts.query)
        server, code = params.get("server", [""])[0], params.get("code", [""])[0]
    elif parts.scheme in ("https", "http") and parts.netloc and parts.path.endswith(APP_PATH):
        params = parse_qs(parts.fragment) or parse_qs(parts.query)
        base = parts.path.removesuffix(APP_PATH)
        server, code = f"{parts.scheme}://{parts.netloc}{base}", params.get("code", [""])[0]
    else:
        server = code = ""
    if not server or not code:
        raise click.BadParameter(f"expected {LINK_FORMS}", param_hint="--link")
    return server, code


def _say_confirmation(started: Mapping[str, Any]) -> None:
    confirmation = started.get("confirmation")
    if isinstance(confirmation, Mapping):
        channel = "SMS" if confirmation.get("channel") == "sms" else "e-mail"
        say(f"A confirmation code was sent by {channel} to {confirmation.get('destination')}.")


@click.command()
@click.option("--server", help="The Freigabe server (its issuer URL).")
@click.option("--identifier", help="Access number or e-mail address (path A).")
@click.option("--binding-code", help="A binding code from the account page (path B).")
@click.option(
    "--link",
    help="The account page's link: https://SERVER/app/#code=... (or freigabe://enrol?...).",
)
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
        register_key(
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
            kdf=state.kdf,
        )
        say("Finish with: idp-device enrol-complete --code CODE (with the same PIN).")
        click.echo(started["enrolment_id"])
        return
    code = confirmation_code or state.ask("Confirmation code")
    register_key(
        api,
        state,
        pin=pin,
        enrolment_id=started["enrolment_id"],
        public_key=started["public_key"],
        code=code,
        code_given=confirmation_code is not None,
    )


@click.command("enrol-complete")
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
        register_key(
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
