"""The ``idp`` command: serve, migrations, users, clients, keys and the demo.

``idp`` is a Flask CLI group around ``create_app()``, so ``idp db ...``
(Flask-Migrate), ``idp routes`` and ``idp shell`` come with it. Commands that
list things take ``--json`` and print one JSON document on stdout; messages
for people go to stderr.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup, FlaskGroup

from . import create_app
from .admin import service
from .admin.service import Actor, AdminError
from .config import ConfigError, load_settings
from .extensions import commit, rollback
from .state import idp

# User subs, client ids and device ids are base64url and may begin with "-":
# taken as the argument, not as an unknown option.
ID_ARGUMENT = {"ignore_unknown_options": True}


class Commands(AppGroup):
    """A group whose every command is one unit of work (DESIGN §7): what it
    changed is committed when it has run, and rolled back when it failed."""

    # (Only the decorator-factory form, @group.command("name"), is used here.)
    def command(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], click.Command]:
        register = super().command

        def decorator(function: Callable[..., Any]) -> click.Command:
            @functools.wraps(function)
            def run(*call_args: Any, **call_kwargs: Any) -> Any:
                try:
                    result = function(*call_args, **call_kwargs)
                except BaseException:
                    rollback()
                    raise
                commit()
                return result

            return register(*args, **kwargs)(run)

        return decorator


users = Commands("users", help="Manage user accounts.")
clients = Commands("clients", help="Manage client registrations.")
keys = Commands("keys", help="Manage the token signing keys.")
devices = Commands("devices", help="List and remove users' devices.")
audit_log = Commands("audit", help="Read and export the audit log.")
# Every change made here is recorded in the audit log with the actor "cli".
CLI = Actor.cli()


def _create_app() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def _say(message: str) -> None:
    click.echo(message, err=True)


# --- users -------------------------------------------------------------------------


def _find_user(identifier: str) -> Any:
    try:
        return service.find_user(identifier)
    except service.NotFound:
        raise click.ClickException(f"no user {identifier}") from None
    except AdminError as exc:
        raise click.ClickException(str(exc.message)) from None


def _user_row(user: Any) -> dict[str, Any]:
    return service.describe_user(user)


def _page_options(command: Any) -> Any:
    command = click.option(
        "--limit", type=click.IntRange(1, service.MAX_PAGE), default=service.MAX_PAGE
    )(command)
    return click.option("--offset", type=click.IntRange(0), default=0)(command)


@users.command("add")
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
    from .accounts.service import AccountError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    try:
        user = service.create_user(CLI, idp().passwords, password=password, **fields)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        _emit_json(_user_row(user))
    else:
        click.echo(f"created user {user.access_number} (sub {user.sub})")


@users.command("list")
@click.option("--search", help="Part of an e-mail, user name, name or access number.")
@_page_options
@click.option("--json", "as_json", is_flag=True)
def users_list(search: str | None, offset: int, limit: int, as_json: bool) -> None:
    """List users."""
    rows = [_user_row(u) for u in service.search_users(search, offset=offset, limit=limit).items]
    if as_json:
        _emit_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['access_number']}  {row['status']:<7} {row['username'] or '-':<20} "
            f"{row['email'] or '-'}"
        )


@users.command("lock", context_settings=ID_ARGUMENT)
@click.argument("identifier")
def users_lock(identifier: str) -> None:
    """Lock an account: ends its sessions and revokes its refresh tokens."""
    user = _find_user(identifier)
    service.lock_user(CLI, user)
    click.echo(f"locked {user.access_number}")


@users.command("unlock", context_settings=ID_ARGUMENT)
@click.argument("identifier")
def users_unlock(identifier: str) -> None:
    """Unlock an account."""
    user = _find_user(identifier)
    service.unlock_user(CLI, user)
    click.echo(f"unlocked {user.access_number}")


@users.command("show", context_settings=ID_ARGUMENT)
@click.argument("identifier")
@click.option("--json", "as_json", is_flag=True)
def users_show(identifier: str, as_json: bool) -> None:
    """A user with devices, passkeys, restoration status and recent events."""
    row = service.describe_overview(service.user_overview(_find_user(identifier)))
    if as_json:
        _emit_json(row)
        return
    for key in (
        "sub", "access_number", "username", "email", "phone_number", "given_name",
        "family_name", "status", "is_admin", "password_reset_required", "created_at",
    ):  # fmt: skip
        click.echo(f"{key:<24} {_text(row[key])}")
    restoration = row["restoration"]
    click.echo(
        f"{'restoration':<24} "
        + (f"active since {restoration['activated_at']}" if restoration["active"] else "off")
    )
    click.echo(f"devices ({len(row['devices'])}):")
    for device in row["devices"]:
        click.echo(f"  {_device_line(device)}")
    click.echo(f"passkeys ({len(row['passkeys'])}):")
    for passkey in row["passkeys"]:
        click.echo(f"  {passkey['id']}  {passkey['name']}  created {passkey['created_at']}")
    click.echo("recent events:")
    for event in row["recent_events"]:
        click.echo(f"  {_event_line(event)}")


@users.command("force-password-reset", context_settings=ID_ARGUMENT)
@click.argument("identifier")
def users_force_password_reset(identifier: str) -> None:
    """The next password login must choose a new password; sessions end now."""
    user = _find_user(identifier)
    service.force_password_reset(CLI, user)
    click.echo(f"{user.access_number} must choose a new password at the next login")


@users.command("admin", context_settings=ID_ARGUMENT)
@click.argument("action", type=click.Choice(["grant", "revoke"]))
@click.argument("identifier")
def users_admin(action: str, identifier: str) -> None:
    """Grant or revoke the administrator role (admin pages and admin tokens)."""
    user = _find_user(identifier)
    service.set_admin(CLI, user, admin=action == "grant")
    state = "is" if user.is_admin else "is not"
    click.echo(f"{user.access_number} {state} an administrator")


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value) or "-"
    return "-" if value in (None, "") else str(value)


def _device_line(device: dict[str, Any]) -> str:
    return (
        f"{device['id']}  {device['kind']:<8} {device['name']}  "
        f"enrolled {device['created_at']} ({device['enrolled_via']}), "
        f"last used {device['last_used_at'] or 'never'}"
    )


def _event_line(event: dict[str, Any]) -> str:
    parts = [event["at"], event["type"]]
    for key in ("actor", "user", "client_id", "device_id", "ip"):
        if event[key]:
            parts.append(f"{key}={event[key]}")
    return "  ".join(parts)


# --- clients -----------------------------------------------------------------------


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
        _emit_json({**service.describe_client(client), "client_secret": secret})
        return
    click.echo(f"client_id:     {client.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}")
        _say("The secret is shown only now; store it in the client's configuration.")


@clients.command("add")
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
    from .oidc.clients import ClientError

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


@clients.command("update", context_settings=ID_ARGUMENT)
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
    from .oidc.clients import ClientError

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


@clients.command("list")
@click.option("--search", help="Part of a client ID or name.")
@_page_options
@click.option("--json", "as_json", is_flag=True)
def clients_list(search: str | None, offset: int, limit: int, as_json: bool) -> None:
    """List client registrations."""
    page = service.search_clients(search, offset=offset, limit=limit)
    rows = [service.describe_client(c) for c in page.items]
    if as_json:
        _emit_json(rows)
        return
    for row in rows:
        state = "disabled" if row["disabled"] else "enabled"
        click.echo(
            f"{row['client_id']:<24} {state:<8} {row['token_endpoint_auth_method']:<20} "
            f"{row['client_name']}"
        )


@clients.command("show", context_settings=ID_ARGUMENT)
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
def clients_show(client_id: str, as_json: bool) -> None:
    """Show one registration (never its secret)."""
    row = service.describe_client(_get_client(client_id))
    if as_json:
        _emit_json(row)
        return
    for key, value in row.items():
        click.echo(f"{key:<28} {json.dumps(value) if isinstance(value, dict) else _text(value)}")


@clients.command("delete", context_settings=ID_ARGUMENT)
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Do not ask.")
def clients_delete(client_id: str, yes: bool) -> None:
    """Delete a registration with its refresh tokens and consents."""
    client = _get_client(client_id)
    if not yes:
        click.confirm(f"Delete client {client_id} ({client.name})?", abort=True, err=True)
    service.delete_client(CLI, client)
    click.echo(f"deleted {client_id}")


@clients.command("rotate-secret", context_settings=ID_ARGUMENT)
@click.argument("client_id")
def clients_rotate_secret(client_id: str) -> None:
    """Replace the client secret; the old one stops working at once."""
    from .oidc.clients import ClientError

    try:
        new = service.rotate_client_secret(CLI, _get_client(client_id))
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"client_secret: {new.secret}")
    _say("The secret is shown only now; the old secret no longer works.")


@clients.command("initial-token")
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
    from .oidc.registration import InitialTokenError, issue_initial_token

    try:
        issued = issue_initial_token(actor="cli", expires_in=expires_in, uses=uses)
    except InitialTokenError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        _emit_json(
            {
                "id": issued.id,
                "initial_access_token": issued.token,
                "uses": issued.uses,
                "expires_at": issued.expires_at.isoformat(),
            }
        )
        return
    click.echo(f"initial_access_token: {issued.token}")
    _say(
        f"Good for {issued.uses} registration(s) until {issued.expires_at.isoformat()}; "
        "shown only now."
    )


@clients.command("disable", context_settings=ID_ARGUMENT)
@click.argument("client_id")
def clients_disable(client_id: str) -> None:
    """Stop all logins and token requests through a client."""
    service.set_client_disabled(CLI, _get_client(client_id), disabled=True)
    click.echo(f"disabled {client_id}")


@clients.command("enable", context_settings=ID_ARGUMENT)
@click.argument("client_id")
def clients_enable(client_id: str) -> None:
    """Let a disabled client work again."""
    service.set_client_disabled(CLI, _get_client(client_id), disabled=False)
    click.echo(f"enabled {client_id}")


# --- keys --------------------------------------------------------------------------


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
def keys_list(as_json: bool) -> None:
    """Signing keys, newest first: active, retiring (still published) and retired."""
    rows = [service.describe_key(k) for k in service.signing_keys()]
    if as_json:
        _emit_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['kid']}  {row['alg']}  {row['state']:<8} created {row['created_at']}"
            + (f"  published until {row['retire_after']}" if row["retire_after"] else "")
        )


@keys.command("rotate")
@click.option(
    "--alg", type=click.Choice(["ES256", "RS256", "all"]), default="all", show_default=True
)
def keys_rotate(alg: str) -> None:
    """New active keys; old ones stay published until their tokens expired."""
    for key in service.rotate_signing_keys(CLI, ("ES256", "RS256") if alg == "all" else (alg,)):
        click.echo(f"{key.alg}: new active key {key.kid}")


@keys.command("retire-expired")
def keys_retire_expired() -> None:
    """Stop publishing retiring keys whose tokens have all expired."""
    click.echo(f"retired {service.retire_expired_keys(CLI)} key(s)")


@keys.command("vapid")
def keys_vapid() -> None:
    """Print the VAPID public key that Web Push services see (RFC 8292)."""
    click.echo(service.vapid_public_key())


# --- devices -----------------------------------------------------------------------


@devices.command("list", context_settings=ID_ARGUMENT)
@click.argument("user")
@click.option("--json", "as_json", is_flag=True)
def devices_list(user: str, as_json: bool) -> None:
    """A user's active devices (USER: access number, user name, e-mail or sub)."""
    rows = [service.describe_device(d) for d in service.user_devices(_find_user(user))]
    if as_json:
        _emit_json(rows)
        return
    for row in rows:
        click.echo(_device_line(row))


@devices.command("remove", context_settings=ID_ARGUMENT)
@click.argument("user")
@click.argument("device_id")
def devices_remove(user: str, device_id: str) -> None:
    """Revoke one of the user's devices at once (its approvals are cancelled)."""
    try:
        left = service.remove_device(CLI, _find_user(user), device_id)
    except service.NotFound:
        raise click.ClickException(f"{user} has no active device {device_id}") from None
    click.echo(f"removed {device_id}; {left} device(s) left")


# --- the audit log -----------------------------------------------------------------


# Times on the command line are UTC.
TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S"]


def _audit_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option("--user", help="Access number, user name, e-mail or sub."),
            click.option("--client", "client_id", help="A client ID."),
            click.option("--type", "types", multiple=True, help="Event type; repeat for several."),
            click.option("--since", type=click.DateTime(TIME_FORMATS), help="From then on (UTC)."),
            click.option("--until", type=click.DateTime(TIME_FORMATS), help="Before then (UTC)."),
        ]
    ):
        command = option(command)
    return command


def _audit_query(
    user: str | None,
    client_id: str | None,
    types: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
) -> service.AuditQuery:
    return service.AuditQuery(
        user_id=_find_user(user).id if user else None,
        client_id=client_id,
        types=types,
        since=since.replace(tzinfo=UTC) if since else None,
        until=until.replace(tzinfo=UTC) if until else None,
    )


@audit_log.command("list")
@_audit_options
@click.option("--limit", type=click.IntRange(1, service.MAX_PAGE), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@click.option("--json", "as_json", is_flag=True)
def audit_list(offset: int, limit: int, as_json: bool, **filters: Any) -> None:
    """Security events, newest first."""
    page = service.audit_events(_audit_query(**filters), offset=offset, limit=limit)
    rows = service.describe_events(page.items)
    if as_json:
        _emit_json(rows)
        return
    for row in rows:
        click.echo(_event_line(row))
    if page.next_offset is not None:
        _say(f"{page.total} events in all; the next page: --offset {page.next_offset}")


@audit_log.command("export")
@_audit_options
def audit_export(**filters: Any) -> None:
    """Every matching event as JSON lines on stdout, oldest first."""
    for event in service.export_audit(_audit_query(**filters)):
        click.echo(json.dumps(event, separators=(",", ":"), ensure_ascii=False))


# --- serve and demo ----------------------------------------------------------------


def _upgrade_database() -> None:
    from flask_migrate import upgrade

    app = _create_app()
    with app.app_context():
        upgrade()
        # Keys made once here rather than by the first requests of the workers.
        idp().keyring.ensure_keys()
        idp().push.public_key()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option(
    "--threads",
    default=1024,
    show_default=True,
    type=int,
    help="Threads per worker; each open waiting page or device event stream takes one.",
)
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Apply database migrations before starting (off with several instances).",
)
def serve(host: str, port: int, workers: int, threads: int, migrate: bool) -> None:
    """Run the provider under gunicorn (gthread workers)."""
    from .serving import run_gunicorn

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if migrate:
        _upgrade_database()
    run_gunicorn(settings, host=host, port=port, workers=workers, threads=threads)


@click.command("demo")
@click.option("--port", default=5000, show_default=True, type=int, help="The IdP's port.")
@click.option("--rp-port", default=5001, show_default=True, type=int, help="The demo RP's port.")
def demo(port: int, rp_port: int) -> None:
    """Migrate, seed demo data, run the IdP and the demo relying party."""
    from .demo import run_demo

    run_demo(idp_port=port, rp_port=rp_port)


def main() -> None:
    group = FlaskGroup(
        create_app=_create_app,
        load_dotenv=False,
        help="Freigabe identity provider. Configuration: IDP_CONFIG and IDP_* variables.",
    )
    group.add_command(serve)
    group.add_command(demo)
    group.main(prog_name="idp")


def register(app: Flask) -> None:
    """Attach the command groups to an app (create_app calls this)."""
    for group in (users, clients, keys, devices, audit_log):
        app.cli.add_command(group)
