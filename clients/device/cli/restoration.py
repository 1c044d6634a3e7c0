"""Restoration (DESIGN §5): the app's "Restoration settings" (``restoration
status | activate | regenerate``), "Back up your identity" after a confirmed
sign-in, and ``restore``, "Restore identity" on a new device."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from ..api import ApiError, ClientError, DeviceApi
from ..authenticator import create_credential
from ..keystore import KeyStore
from .common import (
    KINDS,
    SERVER_ENV,
    Device,
    State,
    emit_json,
    fail,
    local_time,
    normalise_url,
    pass_state,
    pending_devices,
    say,
)
from .keys import create_store, default_device_name, origin_and_rp_id, signed_action
from .messages import ACTIVATION_MESSAGES, RESTORE_MESSAGES, describe_error


def valid_for(expires_in: Any) -> str:
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
            f"{valid_for(answer.get('expires_in'))}."
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


@click.group()
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
    for pending in pending_devices(device):
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


@click.command()
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
        f"{valid_for(started.get('expires_in'))}."
    )
    code2 = code2 or state.ask("Restoration code 2 from the e-mail")
    public_key = api.verify_restore_code(restoration_id, code2)["public_key"]

    pin = state.new_pin()
    origin, rp_id = origin_and_rp_id(api.server, public_key)
    key, credential = create_credential(options_json=public_key, origin=origin)
    say("Registering key …")
    restored = api.complete_restore(restoration_id, credential=credential)
    create_store(state, pin, server=api.server, rp_id=rp_id, key=key, enrolled=restored)
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
