"""``idp devices``: list and remove users' devices."""

from __future__ import annotations

from typing import cast

import click

from ..admin import service
from ..devices.service import DELETION_REASONS, DeletionReason, sign_out_by_default
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
@click.option(
    "--reason",
    type=click.Choice(DELETION_REASONS),
    help="Why, as the user said (kept in the audit log).",
)
@click.option(
    "--sign-out/--no-sign-out",
    "sign_out",
    default=None,
    help="Also sign out everywhere this device confirmed a sign-in (refresh tokens revoked, "
    "back-channel logout to the apps). Default: yes with --reason lost_or_stolen, else no.",
)
def devices_remove(user: str, device_id: str, reason: str | None, sign_out: bool | None) -> None:
    """Revoke one of the user's devices at once (its approvals are cancelled)."""
    try:
        left = service.remove_device(
            CLI,
            find_user(user),
            device_id,
            reason=cast(DeletionReason | None, reason),
            sign_out=sign_out,
        )
    except service.NotFound:
        raise click.ClickException(f"{user} has no active device {device_id}") from None
    signed_out = sign_out if sign_out is not None else sign_out_by_default(reason)
    also = "; signed out everywhere it confirmed a sign-in" if signed_out else ""
    click.echo(f"removed {device_id}{also}; {left} device(s) left")


# --- the audit log -----------------------------------------------------------------
