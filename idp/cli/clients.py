"""``idp clients``: register and manage OAuth/OIDC clients."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..admin import service
from ..oidc.clients import ClientError
from ..oidc.fields import FIELDS, MIN_LIFETIME, ClientField, load
from ..oidc.registration import InitialTokenError, issue_initial_token
from .common import CLI, ID_ARGUMENT, Commands, emit_json, page_options, say, text

F = TypeVar("F", bound=Callable[..., Any])

group = Commands("clients", help="Manage client registrations.")


def _get_client(client_id: str) -> Any:
    try:
        return service.get_client(client_id)
    except service.NotFound:
        raise click.ClickException(f"no client {client_id}") from None


def _show_client(client: Any, secret: str | None, as_json: bool) -> None:
    if as_json:
        emit_json({**service.describe_client(client), "client_secret": secret})
        return
    click.echo(f"client_id:     {client.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}")
        say("The secret is shown only now; store it in the client's configuration.")


def _option(field: ClientField, *, update: bool) -> Callable[[F], F]:
    """The ``idp clients add/update`` option of a client field: a repeated
    option for a list, --x/--no-x for a flag; in ``update`` nothing is the
    default (the field stays as it is)."""
    flag = f"--{field.cli_option}"
    text = field.cli_help or f"{field.label}."
    if field.kind == "text":
        return click.option(flag, field.attr, required=not update, help=text)
    if field.kind == "flag":
        return click.option(f"{flag}/--no-{field.cli_option}", field.attr, default=None, help=text)
    if field.kind in ("uris", "list") or (field.kind == "choices" and not field.joined):
        kind = click.Choice(list(field.choices)) if field.kind == "choices" else None
        more = ' Replaces the list; "" empties it.' if update else " Repeat for several."
        return click.option(flag, field.attr, multiple=True, type=kind, help=text + more)
    if field.kind == "choice":
        default = "" if update else f" Default: {field.default}."
        return click.option(flag, field.attr, type=click.Choice(list(field.choices)),
                            help=text + default)  # fmt: skip
    if field.kind == "option":
        choices = f" One of {', '.join(field.choices)}"
        clear = ', or "default" (or ""): none.' if update else "."
        return click.option(flag, field.attr, help=text + choices + clear)
    if field.kind == "seconds":
        lowest = 0 if update else MIN_LIFETIME
        more = " 0: the default." if update else ""
        return click.option(flag, field.attr, type=click.IntRange(lowest), help=text + more)
    if field.kind == "json":
        return click.option(flag, field.attr, type=click.File("r"), help=text)
    clear = ' "" removes it.' if update and field.kind == "uri" else ""
    return click.option(flag, field.attr, help=text + clear)


def _field_options(*, update: bool) -> Callable[[F], F]:
    """Every client field's option (idp.oidc.fields), and for a JSON field
    in ``update`` a --clear-x."""

    def decorate(command: F) -> F:
        for field in reversed(FIELDS):
            if update and field.kind == "json":
                command = click.option(
                    f"--clear-{field.attr.replace('_', '-')}", f"clear_{field.attr}",
                    is_flag=True, help=f"Remove the registered {field.attr}.",
                )(command)  # fmt: skip
            command = _option(field, update=update)(command)
        return command

    return decorate


def _load_json(field: ClientField, file: Any) -> Any:
    try:
        return json.load(file)
    except json.JSONDecodeError:
        raise click.ClickException(f"--{field.cli_option} is not JSON") from None


def _fields(options: dict[str, Any], *, update: bool) -> dict[str, Any]:
    """The options given, as client fields (columns' names and values):
    a list's "" items dropped, and in ``update`` "", 0 and "default" clear."""
    fields: dict[str, Any] = {}
    for field in FIELDS:
        value = options.pop(field.attr)
        if update and field.kind == "json" and options.pop(f"clear_{field.attr}"):
            fields[field.attr] = None
        if value is None or value == ():
            continue
        if field.kind == "json":
            value = _load_json(field, value)
        elif isinstance(value, tuple):
            value = [item for item in value if item]
        elif update and value in ("", 0, "default") and not isinstance(value, bool):
            value = None
        fields[field.attr] = load(field, value if value is not None or not field.joined else "")
    return fields


@group.command("add")
@click.option("--client-id", help="Default: random.")
@_field_options(update=False)
@click.option("--json", "as_json", is_flag=True)
def clients_add(client_id: str | None, as_json: bool, **options: Any) -> None:
    """Register a client. A secret is printed once and stored only as a digest.

    The admin scope (the admin JSON API) is never a default: give it with
    --scope, e.g. --grant-type client_credentials --scope admin.
    """
    fields = _fields(options, update=False)
    if client_id is not None:
        fields["client_id"] = client_id
    try:
        client, secret = service.create_client(CLI, **fields)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    _show_client(client, secret, as_json)


@group.command("update", context_settings=ID_ARGUMENT)
@click.argument("client_id")
@_field_options(update=True)
@click.option("--json", "as_json", is_flag=True)
def clients_update(client_id: str, as_json: bool, **options: Any) -> None:
    """Change a registration: only the options given change.

    A repeated option (--redirect-uri, --grant-type, --contact) replaces the
    whole list, and "" empties it; "" also clears a text (--logo-uri ""),
    0 a lifetime and "default" the ID token algorithm.
    """
    changes = _fields(options, update=True)
    client = _get_client(client_id)
    try:
        secret = service.update_client(CLI, client, **changes)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json or secret:
        _show_client(client, secret, as_json)
    else:
        click.echo(f"updated {client_id}")


@group.command("list")
@click.option("--search", help="Part of a client ID or name.")
@page_options
@click.option("--json", "as_json", is_flag=True)
def clients_list(search: str | None, offset: int, limit: int, as_json: bool) -> None:
    """List client registrations."""
    page = service.search_clients(search, offset=offset, limit=limit)
    rows = [service.describe_client(c) for c in page.items]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        state = "disabled" if row["disabled"] else "enabled"
        click.echo(
            f"{row['client_id']:<24} {state:<8} {row['token_endpoint_auth_method']:<20} "
            f"{row['client_name']}"
        )


@group.command("show", context_settings=ID_ARGUMENT)
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
def clients_show(client_id: str, as_json: bool) -> None:
    """Show one registration (never its secret)."""
    row = service.describe_client(_get_client(client_id))
    if as_json:
        emit_json(row)
        return
    for key, value in row.items():
        click.echo(f"{key:<28} {json.dumps(value) if isinstance(value, dict) else text(value)}")


@group.command("delete", context_settings=ID_ARGUMENT)
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Do not ask.")
def clients_delete(client_id: str, yes: bool) -> None:
    """Delete a registration with its refresh tokens and consents."""
    client = _get_client(client_id)
    if not yes:
        click.confirm(f"Delete client {client_id} ({client.name})?", abort=True, err=True)
    service.delete_client(CLI, client)
    click.echo(f"deleted {client_id}")


@group.command("rotate-secret", context_settings=ID_ARGUMENT)
@click.argument("client_id")
def clients_rotate_secret(client_id: str) -> None:
    """Replace the client secret; the old one stops working at once."""
    try:
        new = service.rotate_client_secret(CLI, _get_client(client_id))
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"client_secret: {new.secret}")
    say("The secret is shown only now; the old secret no longer works.")


@group.command("initial-token")
@click.option(
    "--expires-in",
    type=click.IntRange(60, 365 * 86400),
    default=86400,
    show_default=True,
    help="Seconds the token stays valid.",
)
@click.option(
    "--uses",
    type=click.IntRange(1, 10000),
    default=1,
    show_default=True,
    help="How many clients may register with it.",
)
@click.option("--json", "as_json", is_flag=True)
def clients_initial_token(expires_in: int, uses: int, as_json: bool) -> None:
    """Issue an initial access token for dynamic client registration (RFC 7591).

    The token is printed once and stored only as a digest; a client sends it
    as "Authorization: Bearer <token>" to POST /register.
    """
    try:
        issued = issue_initial_token(actor="cli", expires_in=expires_in, uses=uses)
    except InitialTokenError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        emit_json(
            {
                "id": issued.id,
                "initial_access_token": issued.token,
                "uses": issued.uses,
                "expires_at": issued.expires_at.isoformat(),
            }
        )
        return
    click.echo(f"initial_access_token: {issued.token}")
    say(
        f"Good for {issued.uses} registration(s) until {issued.expires_at.isoformat()}; "
        "shown only now."
    )


@group.command("disable", context_settings=ID_ARGUMENT)
@click.argument("client_id")
def clients_disable(client_id: str) -> None:
    """Stop all logins and token requests through a client."""
    service.set_client_disabled(CLI, _get_client(client_id), disabled=True)
    click.echo(f"disabled {client_id}")


@group.command("enable", context_settings=ID_ARGUMENT)
@click.argument("client_id")
def clients_enable(client_id: str) -> None:
    """Let a disabled client work again."""
    service.set_client_disabled(CLI, _get_client(client_id), disabled=False)
    click.echo(f"enabled {client_id}")
