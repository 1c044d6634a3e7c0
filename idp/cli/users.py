"""``idp users``: create, find, lock and inspect user accounts."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..accounts.service import AccountError, accounts_with_email
from ..admin import service
from ..state import idp
from .common import (
    CLI,
    ID_ARGUMENT,
    Commands,
    device_line,
    emit_json,
    event_line,
    find_user,
    page_options,
    text,
)

group = Commands("users", help="Manage user accounts.")


def _user_row(user: Any) -> dict[str, Any]:
    return service.describe_user(user)


@group.command("add")
@click.option("--email")
@click.option("--username")
@click.option("--phone", "phone_number")
@click.option("--given-name")
@click.option("--family-name")
@click.option("--access-number", help="Default: ten random digits.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from stdin instead of a prompt."
)
@click.option("--json", "as_json", is_flag=True)
def users_add(password_stdin: bool, as_json: bool, **fields: Any) -> None:
    """Create a user; prompts for the password."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    try:
        user = service.create_user(CLI, idp().passwords, password=password, **fields)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        emit_json(_user_row(user))
    else:
        click.echo(f"created user {user.access_number} (sub {user.sub})")
    if user.email and accounts_with_email(user.email) > 1:
        # Allowed (a family may share one address), but signing in with it is
        # then refused as ambiguous: say so where it happens.
        click.echo(
            f"note: other accounts already have the e-mail address {user.email}; "
            "these accounts must now sign in with their access number or user name, "
            "not with the e-mail address",
            err=True,
        )


@group.command("list")
@click.option("--search", help="Part of an e-mail, user name, name or access number.")
@page_options
@click.option("--json", "as_json", is_flag=True)
def users_list(search: str | None, offset: int, limit: int, as_json: bool) -> None:
    """List users."""
    rows = [_user_row(u) for u in service.search_users(search, offset=offset, limit=limit).items]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['access_number']}  {row['status']:<7} {row['username'] or '-':<20} "
            f"{row['email'] or '-'}"
        )


@group.command("lock", context_settings=ID_ARGUMENT)
@click.argument("identifier")
def users_lock(identifier: str) -> None:
    """Lock an account: ends its sessions and revokes its refresh tokens."""
    user = find_user(identifier)
    service.lock_user(CLI, user)
    click.echo(f"locked {user.access_number}")


@group.command("unlock", context_settings=ID_ARGUMENT)
@click.argument("identifier")
def users_unlock(identifier: str) -> None:
    """Unlock an account."""
    user = find_user(identifier)
    service.unlock_user(CLI, user)
    click.echo(f"unlocked {user.access_number}")


@group.command("show", context_settings=ID_ARGUMENT)
@click.argument("identifier")
@click.option("--json", "as_json", is_flag=True)
def users_show(identifier: str, as_json: bool) -> None:
    """A user with devices, passkeys, restoration status and recent events."""
    row = service.describe_overview(service.user_overview(find_user(identifier)))
    if as_json:
        emit_json(row)
        return
    for key in (
        "sub", "access_number", "username", "email", "phone_number", "given_name",
        "family_name", "status", "is_admin", "password_reset_required", "created_at",
    ):  # fmt: skip
        click.echo(f"{key:<24} {text(row[key])}")
    restoration = row["restoration"]
    click.echo(
        f"{'restoration':<24} "
        + (f"active since {restoration['activated_at']}" if restoration["active"] else "off")
    )
    click.echo(f"devices ({len(row['devices'])}):")
    for device in row["devices"]:
        click.echo(f"  {device_line(device)}")
    click.echo(f"passkeys ({len(row['passkeys'])}):")
    for passkey in row["passkeys"]:
        click.echo(f"  {passkey['id']}  {passkey['name']}  created {passkey['created_at']}")
    click.echo("recent events:")
    for event in row["recent_events"]:
        click.echo(f"  {event_line(event)}")


@group.command("force-password-reset", context_settings=ID_ARGUMENT)
@click.argument("identifier")
def users_force_password_reset(identifier: str) -> None:
    """The next password login must choose a new password; sessions end now."""
    user = find_user(identifier)
    service.force_password_reset(CLI, user)
    click.echo(f"{user.access_number} must choose a new password at the next login")


@group.command("admin", context_settings=ID_ARGUMENT)
@click.argument("action", type=click.Choice(["grant", "revoke"]))
@click.argument("identifier")
def users_admin(action: str, identifier: str) -> None:
    """Grant or revoke the administrator role (admin pages and admin tokens)."""
    user = find_user(identifier)
    service.set_admin(CLI, user, admin=action == "grant")
    state = "is" if user.is_admin else "is not"
    click.echo(f"{user.access_number} {state} an administrator")
