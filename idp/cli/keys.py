"""``idp keys``: the token signing keys and the VAPID key."""

from __future__ import annotations

import click

from ..admin import service
from .common import CLI, Commands, emit_json

group = Commands("keys", help="Manage the token signing keys.")


@group.command("list")
@click.option("--json", "as_json", is_flag=True)
def keys_list(as_json: bool) -> None:
    """Signing keys, newest first: active, retiring (still published) and retired."""
    rows = [service.describe_key(k) for k in service.signing_keys()]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['kid']}  {row['alg']}  {row['state']:<8} created {row['created_at']}"
            + (f"  published until {row['retire_after']}" if row["retire_after"] else "")
        )


@group.command("rotate")
@click.option(
    "--alg", type=click.Choice(["ES256", "RS256", "all"]), default="all", show_default=True
)
def keys_rotate(alg: str) -> None:
    """New active keys; old ones stay published until their tokens expired."""
    for key in service.rotate_signing_keys(CLI, ("ES256", "RS256") if alg == "all" else (alg,)):
        click.echo(f"{key.alg}: new active key {key.kid}")


@group.command("retire-expired")
def keys_retire_expired() -> None:
    """Stop publishing retiring keys whose tokens have all expired."""
    click.echo(f"retired {service.retire_expired_keys(CLI)} key(s)")


@group.command("vapid")
def keys_vapid() -> None:
    """Print the VAPID public key that Web Push services see (RFC 8292)."""
    click.echo(service.vapid_public_key())
