"""``idp devices``: list and remove users' devices."""

from __future__ import annotations

import click

from ..admin import service
from .common import CLI, ID_ARGUMENT, Commands, device_line, emit_json, find_user

group = Commands("devices", help="List and remove users' devices.")


@group.command("list", context_settings=ID_ARGUMENT)
@click.argument("user")
@click.option("--json", "as_json", is_flag=True)
def devices_list(user: str, as_json: bool) -> None:
    """A user's active devices (USER: access number, user name, e-mail or sub)."""
    rows = [service.describe_device(d) for d in service.user_devices(find_user(user))]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(device_line(row))


@group.command("remove", context_settings=ID_ARGUMENT)
@click.argument("user")
@click.argument("device_id")
def devices_remove(user: str, device_id: str) -> None:
    """Revoke one of the user's devices at once (its approvals are cancelled)."""
    try:
        left = service.remove_device(CLI, find_user(user), device_id)
    except service.NotFound:
        raise click.ClickException(f"{user} has no active device {device_id}") from None
    click.echo(f"removed {device_id}; {left} device(s) left")


# --- the audit log -----------------------------------------------------------------
