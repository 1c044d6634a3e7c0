"""The ``idp`` command: serve, migrations, users, clients, keys and the demo.

``idp`` is a Flask CLI group around ``create_app()``, so ``idp db ...``
(Flask-Migrate), ``idp routes`` and ``idp shell`` come with it. Commands that
list things take ``--json`` and print one JSON document on stdout; messages
for people go to stderr.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup, FlaskGroup
from sqlalchemy import select

from . import create_app, idp
from .audit import record
from .config import ConfigError, load_settings
from .extensions import db

users = AppGroup("users", help="Manage user accounts.")
clients = AppGroup("clients", help="Manage client registrations.")
keys = AppGroup("keys", help="Manage the token signing keys.")


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
    from .accounts.service import find_user

    lookup = find_user(identifier)
    if lookup.ambiguous_email:
        raise click.ClickException(
            f"{identifier} belongs to several accounts; use the access number"
        )
    if lookup.user is None:
        raise click.ClickException(f"no user {identifier}")
    return lookup.user


def _user_row(user: Any) -> dict[str, Any]:
    return {
        "sub": user.sub,
        "access_number": user.access_number,
        "username": user.username,
        "email": user.email,
        "phone_number": user.phone_number,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "status": user.status,
        "created_at": user.created_at.isoformat(),
    }


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
    from .accounts.service import AccountError, create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    try:
        user = create_user(idp().passwords, password=password, **fields)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    record("user_created", user_id=user.id, actor="cli", commit=False)
    db.session.commit()
    if as_json:
        _emit_json(_user_row(user))
    else:
        click.echo(f"created user {user.access_number} (sub {user.sub})")


@users.command("list")
@click.option("--search", help="Part of an e-mail, user name or access number.")
@click.option("--json", "as_json", is_flag=True)
def users_list(search: str | None, as_json: bool) -> None:
    """List users."""
    from .accounts.service import search_users

    rows = [_user_row(u) for u in search_users(search)]
    if as_json:
        _emit_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['access_number']}  {row['status']:<7} {row['username'] or '-':<20} "
            f"{row['email'] or '-'}"
        )


@users.command("lock")
@click.argument("identifier")
def users_lock(identifier: str) -> None:
    """Lock an account: ends its sessions and revokes its refresh tokens."""
    from .accounts.service import lock_user

    user = _find_user(identifier)
    lock_user(user)
    record("user_locked", user_id=user.id, actor="cli", commit=False)
    db.session.commit()
    click.echo(f"locked {user.access_number}")


@users.command("unlock")
@click.argument("identifier")
def users_unlock(identifier: str) -> None:
    """Unlock an account."""
    from .accounts.service import unlock_user

    user = _find_user(identifier)
    unlock_user(user)
    record("user_unlocked", user_id=user.id, actor="cli", commit=False)
    db.session.commit()
    click.echo(f"unlocked {user.access_number}")


# --- clients -----------------------------------------------------------------------


def _get_client(client_id: str) -> Any:
    from .oidc.clients import get_client

    client = get_client(client_id)
    if client is None:
        raise click.ClickException(f"no client {client_id}")
    return client


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
@click.option("--json", "as_json", is_flag=True)
def clients_add(scope: str | None, jwks_file: Any, as_json: bool, **fields: Any) -> None:
    """Register a client. A secret is printed once and stored only as a digest."""
    from .oidc.clients import ClientError, create_client, describe

    if not fields["grant_types"]:
        fields.pop("grant_types")
    if scope is not None:
        fields["allowed_scopes"] = scope.split()
    if jwks_file is not None:
        try:
            fields["jwks"] = json.load(jwks_file)
        except json.JSONDecodeError:
            raise click.ClickException("--jwks-file is not JSON") from None
    try:
        client, secret = create_client(**fields)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    record("client_created", client_id=client.client_id, actor="cli", commit=False)
    db.session.commit()
    if as_json:
        _emit_json({**describe(client), "client_secret": secret})
        return
    click.echo(f"client_id:     {client.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}")
        _say("The secret is shown only now; store it in the client's configuration.")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True)
def clients_list(as_json: bool) -> None:
    """List client registrations."""
    from .oidc.clients import describe, list_clients

    rows = [describe(c) for c in list_clients()]
    if as_json:
        _emit_json(rows)
        return
    for row in rows:
        state = "disabled" if row["disabled"] else "enabled"
        click.echo(
            f"{row['client_id']:<24} {state:<8} {row['token_endpoint_auth_method']:<20} "
            f"{row['client_name']}"
        )


@clients.command("show")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
def clients_show(client_id: str, as_json: bool) -> None:
    """Show one registration (never its secret)."""
    from .oidc.clients import describe

    row = describe(_get_client(client_id))
    if as_json:
        _emit_json(row)
        return
    for key, value in row.items():
        if isinstance(value, list):
            value = " ".join(value) or "-"
        click.echo(f"{key:<28} {value if value not in (None, '') else '-'}")


@clients.command("delete")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Do not ask.")
def clients_delete(client_id: str, yes: bool) -> None:
    """Delete a registration with its refresh tokens and consents."""
    from .oidc.clients import delete_client

    client = _get_client(client_id)
    if not yes:
        click.confirm(f"Delete client {client_id} ({client.name})?", abort=True, err=True)
    delete_client(client)
    record("client_deleted", client_id=client_id, actor="cli", commit=False)
    db.session.commit()
    click.echo(f"deleted {client_id}")


@clients.command("rotate-secret")
@click.argument("client_id")
def clients_rotate_secret(client_id: str) -> None:
    """Replace the client secret; the old one stops working at once."""
    from .oidc.clients import ClientError, rotate_secret

    try:
        new = rotate_secret(_get_client(client_id))
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    record("client_secret_rotated", client_id=client_id, actor="cli", commit=False)
    db.session.commit()
    click.echo(f"client_secret: {new.secret}")
    _say("The secret is shown only now; the old secret no longer works.")


@clients.command("disable")
@click.argument("client_id")
def clients_disable(client_id: str) -> None:
    """Stop all logins and token requests through a client."""
    _get_client(client_id).disabled = True
    record("client_disabled", client_id=client_id, actor="cli", commit=False)
    db.session.commit()
    click.echo(f"disabled {client_id}")


@clients.command("enable")
@click.argument("client_id")
def clients_enable(client_id: str) -> None:
    _get_client(client_id).disabled = False
    record("client_enabled", client_id=client_id, actor="cli", commit=False)
    db.session.commit()
    click.echo(f"enabled {client_id}")


# --- keys --------------------------------------------------------------------------


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
def keys_list(as_json: bool) -> None:
    """Signing keys: active, retiring (still published) and retired."""
    from .oidc.models import SigningKey

    idp().keyring.ensure_keys()
    rows = [
        {
            "kid": k.kid,
            "alg": k.alg,
            "state": k.state,
            "created_at": k.created_at.isoformat(),
            "retire_after": k.retire_after.isoformat() if k.retire_after else None,
        }
        for k in db.session.scalars(select(SigningKey).order_by(SigningKey.created_at))
    ]
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
    ring = idp().keyring
    ring.ensure_keys()
    for name in ("ES256", "RS256") if alg == "all" else (alg,):
        key = ring.rotate(name)
        record("signing_key_rotated", actor="cli", alg=name, kid=key.kid)
        click.echo(f"{name}: new active key {key.kid}")


@keys.command("retire-expired")
def keys_retire_expired() -> None:
    """Stop publishing retiring keys whose tokens have all expired."""
    count = idp().keyring.retire_expired()
    if count:
        record("signing_keys_retired", actor="cli", count=count)
    click.echo(f"retired {count} key(s)")


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
    for group in (users, clients, keys):
        app.cli.add_command(group)
