"""``idp-device notices``: what happened to the account's devices, in words."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import click

from .common import State, emit_json, local_time, pass_state, say


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
    if notice.get("location"):
        ip = f"{ip} ({notice['location']})"
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


@click.command()
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
