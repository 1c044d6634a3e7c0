"""``idp clients``: register and manage OAuth/OIDC clients."""

from __future__ import annotations

import json
from typing import Any

import click

from ..admin import service
from ..oidc.clients import ClientError
from ..oidc.registration import InitialTokenError, issue_initial_token
from .common import CLI, ID_ARGUMENT, Commands, emit_json, page_options, say, text

group = Commands("clients", help="Manage client registrations.")


def _get_client(client_id: str) -> Any:
    try:
        return service.get_client(client_id)
    except service.NotFound:
        raise click.ClickException(f"no client {client_id}") from None


def _load_jwks(jwks_file: Any) -> Any:
    try:
        return json.load(jwks_file)
    except json.JSONDecodeError:
        raise click.ClickException("--jwks-file is not JSON") from None


def _show_client(client: Any, secret: str | None, as_json: bool) -> None:
    if as_json:
        emit_json({**service.describe_client(client), "client_secret": secret})
        return
    click.echo(f"client_id:     {client.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}")
        say("The secret is shown only now; store it in the client's configuration.")


@group.command("add")
@click.option("--name", required=True)
@click.option("--client-id", help="Default: random.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Repeat for several.")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True)
@click.option(
    "--auth-method",
    "token_endpoint_auth_method",
    type=click.Choice(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]),
    default="client_secret_basic",
    show_default=True,
)
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]),
    help="Default: authorization_code and refresh_token.",
)
@click.option("--scope", help="Allowed scopes, space separated. Default: all.")
@click.option("--first-party", is_flag=True, help="Skip the consent screen.")
@click.option("--require-mfa", is_flag=True, help="Logins need approval on a device.")
@click.option(
    "--mfa-fallback",
    type=click.Choice(["refuse", "password"]),
    default="refuse",
    show_default=True,
    help="With --require-mfa, for users without a device.",
)
@click.option("--jwks-file", type=click.File("r"), help="Public JWK set for private_key_jwt.")
@click.option("--jwks-uri")
@click.option(
    "--id-token-alg", "id_token_signed_response_alg", type=click.Choice(["ES256", "RS256"])
)
@click.option("--logo-uri")
@click.option("--contact", "contacts", multiple=True, help="Repeat for several.")
@click.option("--default-acr")
@click.option("--access-token-lifetime", type=click.IntRange(60), help="Seconds.")
@click.option("--refresh-token-lifetime", type=click.IntRange(60), help="Seconds.")
@click.option(
    "--backchannel-logout-uri", help="Where Logout Tokens are posted (Back-Channel Logout)."
)
@click.option(
    "--backchannel-logout-session-required",
    is_flag=True,
    help="The client needs sid in Logout Tokens (always sent).",
)
@click.option("--json", "as_json", is_flag=True)
def clients_add(scope: str | None, jwks_file: Any, as_json: bool, **fields: Any) -> None:
    """Register a client. A secret is printed once and stored only as a digest.

    The admin scope (the admin JSON API) is never a default: give it with
    --scope, e.g. --grant-type client_credentials --scope admin.
    """
    if not fields["grant_types"]:
        fields.pop("grant_types")
    if scope is not None:
        fields["allowed_scopes"] = scope.split()
    if jwks_file is not None:
        fields["jwks"] = _load_jwks(jwks_file)
    try:
        client, secret = service.create_client(CLI, **fields)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    _show_client(client, secret, as_json)


@group.command("update", context_settings=ID_ARGUMENT)
@click.argument("client_id")
@click.option("--name")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Replaces the list.")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True)
@click.option(
    "--auth-method",
    "token_endpoint_auth_method",
    type=click.Choice(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]),
)
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]),
)
@click.option("--scope", "allowed_scopes", help="Allowed scopes, space separated.")
@click.option("--first-party/--no-first-party", default=None)
@click.option("--require-pkce/--no-require-pkce", default=None)
@click.option("--require-mfa/--no-require-mfa", default=None)
@click.option("--mfa-fallback", type=click.Choice(["refuse", "password"]))
@click.option("--jwks-file", type=click.File("r"), help="Public JWK set for private_key_jwt.")
@click.option("--clear-jwks", is_flag=True, help="Remove the registered JWK set.")
@click.option("--jwks-uri")
@click.option(
    "--id-token-alg",
    "id_token_signed_response_alg",
    type=click.Choice(["ES256", "RS256", "default"]),
)
@click.option("--logo-uri")
@click.option("--contact", "contacts", multiple=True)
@click.option("--default-acr")
@click.option("--access-token-lifetime", type=click.IntRange(0), help="Seconds; 0: default.")
@click.option("--refresh-token-lifetime", type=click.IntRange(0), help="Seconds; 0: default.")
@click.option("--backchannel-logout-uri", help='"" removes it.')
@click.option(
    "--backchannel-logout-session-required/--no-backchannel-logout-session-required",
    default=None,
)
@click.option("--json", "as_json", is_flag=True)
def clients_update(
    client_id: str, jwks_file: Any, clear_jwks: bool, as_json: bool, **options: Any
) -> None:
    """Change a registration: only the options given change.

    A repeated option (--redirect-uri, --grant-type, --contact) replaces the
    whole list, and "" empties it; "" also clears a text (--logo-uri ""),
    0 a lifetime and "default" the ID token algorithm.
    """
    changes: dict[str, Any] = {}
    for name, value in options.items():
        if value is None or value == ():
            continue
        if isinstance(value, tuple):
            changes[name] = [item for item in value if item]
        elif value in ("", 0, "default") and not isinstance(value, bool):
            changes[name] = None
        else:
            changes[name] = value
    if "allowed_scopes" in changes:
        changes["allowed_scopes"] = (changes["allowed_scopes"] or "").split()
    if clear_jwks:
        changes["jwks"] = None
    if jwks_file is not None:
        changes["jwks"] = _load_jwks(jwks_file)
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
