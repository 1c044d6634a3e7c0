"""The account's devices: ``devices``, ``status``, ``rename``, ``delete`` and
``refuse``; and where it is signed in: ``sessions``."""

from __future__ import annotations

import click

from ..api import ApiError
from ..keystore import KeyStore
from .common import (
    ID_ARGUMENT,
    State,
    emit_json,
    fail,
    local_time,
    pass_state,
    pending_devices,
    say,
    table,
)
from .keys import signed_action
from .messages import MESSAGES

# The words the app and the account page show for the API's codes.
KINDS = {
    "iphone": "iPhone",
    "ipad": "iPad",
    "android": "Android",
    "browser": "Browser",
    "cli": "Command line",
}
SET_UP_WITH = {
    "password_sms": "password and text message",
    "password_email": "password and e-mail",
    "binding_code": "a code from the account page",
    "restoration": "restoring your ID",
}


def _word(words: dict[str, str], code: object) -> str:
    """The word for an API code; an unknown code as it came."""
    return words.get(str(code), str(code))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_state
def devices(state: State, as_json: bool) -> None:
    """List the devices of your account.

    A device added by restoration is "pending" while it waits out the veto
    window: until then it cannot be used, and 'idp-device refuse' removes it.
    With --json each device also has "pending_until" (null when not pending),
    and "kind" and "enrolled_via" are the API's codes.
    """
    device, _pin = state.unlock()
    found = device.api.devices()
    pending = {str(d.get("id")): d.get("pending_until") for d in pending_devices(device)}
    for listed in found:
        listed["pending_until"] = pending.get(str(listed.get("id")))
    if as_json:
        emit_json({"devices": found})
        return
    table(
        [
            [
                ("* " if d.get("this_device") else "  ") + str(d.get("name")),
                _word(KINDS, d.get("kind")),
                _word(SET_UP_WITH, d.get("enrolled_via")),
                local_time(d.get("created_at")),
                local_time(d.get("last_used_at")),
                f"pending until {local_time(d['pending_until'])}"
                if d.get("pending_until")
                else "active",
                str(d.get("id")),
            ]
            for d in found
        ],
        ["  NAME", "KIND", "SET UP WITH", "CREATED", "LAST USED", "STATUS", "ID"],
    )


@click.command()
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


@click.command(context_settings=ID_ARGUMENT)
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
        KeyStore.save(state.store, pin, device.data, kdf=state.kdf)
    say(f"The device {device_id} is now called {renamed.get('name')!r}.")


@click.command(context_settings=ID_ARGUMENT)
@click.argument("device_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--reason",
    type=click.Choice(["lost_or_stolen", "no_longer_used"]),
    help="Why you delete it. lost_or_stolen also signs out everywhere it confirmed a "
    "sign-in, unless --no-sign-out.",
)
@click.option(
    "--sign-out/--no-sign-out",
    "sign_out",
    default=None,
    help="Also sign out everywhere this device confirmed a sign-in: those browsers are "
    "signed out and their apps lose their access.",
)
@pass_state
def delete(
    state: State, device_id: str, yes: bool, reason: str | None, sign_out: bool | None
) -> None:
    """Delete the device DEVICE_ID from your account (this one too: un-enrol).

    The device is removed at once: its sign-in confirmations stop and its
    token no longer works. Signed with this device's key (the PIN), and so
    are --reason and --sign-out.
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
    payload = {"device": device_id}
    if reason is not None:
        payload["reason"] = reason
    if sign_out is not None:
        payload["sign_out"] = "yes" if sign_out else "no"
    nonce, assertion = signed_action(state, device, pin, "delete_device", payload)
    deleted = api.delete_device(
        device_id, nonce=nonce, assertion=assertion, reason=reason, sign_out=sign_out
    )
    if deleted.get("signed_out"):
        say("Everywhere it confirmed a sign-in, you are signed out now.")
    if this:
        KeyStore.wipe(state.store)
        say(f"This device was deleted from your account; its key store {state.store} was wiped.")
    else:
        say(f"The device {target.get('name')!r} was deleted from your account.")


@click.command(context_settings=ID_ARGUMENT)
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
    target = next((d for d in pending_devices(device) if d.get("id") == device_id), None)
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


# --- sessions ------------------------------------------------------------------------------

CONFIRMED_WITH = {"password": "password only", "device": "device", "passkey": "passkey"}


def _confirmed(session: dict[str, object]) -> str:
    confirmed = session.get("confirmed_by")
    if not isinstance(confirmed, dict):
        return "-"
    method = _word(CONFIRMED_WITH, confirmed.get("method"))
    return f"{method} {confirmed['name']!r}" if confirmed.get("name") else method


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
def sessions(ctx: click.Context, as_json: bool) -> None:
    """Where your account is signed in (browsers), and ending those sessions.

    Without a subcommand: the list, most recently active first, with the
    session id that 'sessions end' takes.
    """
    if ctx.invoked_subcommand is not None:
        return
    state: State = ctx.obj
    device, _pin = state.unlock()
    found = device.api.sessions()
    if as_json:
        emit_json(found)
        return
    if not found:
        say("Your account is not signed in anywhere.")
        return
    rows = [
        [
            str(s.get("sid")),
            str(s.get("browser") or "unknown browser"),
            ", ".join(str(p) for p in (s.get("ip"), s.get("place")) if p) or "-",
            local_time(s.get("last_active_at")),
            _confirmed(s),
            ", ".join(str(a.get("name")) for a in s.get("apps") or [] if isinstance(a, dict))
            or "-",
        ]
        for s in found
    ]
    table(rows, ["SESSION", "BROWSER", "WHERE", "LAST ACTIVE", "CONFIRMED WITH", "APPS"])


@sessions.command("end", context_settings=ID_ARGUMENT)
@click.argument("sid")
@pass_state
def sessions_end(state: State, sid: str) -> None:
    """End the session SID: that browser is signed out, and its apps too."""
    device, _pin = state.unlock()
    device.api.end_session(sid)
    say(f"The session {sid} has ended; its apps were signed out.")


@sessions.command("end-all")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def sessions_end_all(state: State, yes: bool) -> None:
    """End every session: every browser is signed out (your devices stay)."""
    device, _pin = state.unlock()
    if not yes:
        answer = state.ask("Type 'yes' to sign out everywhere", allow_empty=True)
        if answer.lower() not in ("yes", "y"):
            fail("Nothing was ended.")
    ended = device.api.end_all_sessions()
    say(f"{ended} session(s) ended; you are signed out everywhere.")
