"""``idp purge``: delete the rows that serve nothing any more (idp.housekeeping)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .. import housekeeping
from ..state import idp
from .common import emit_json


@click.command("purge")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def command(as_json: bool) -> None:
    """Delete ended sessions, expired tokens and (with audit_retention_days)
    old audit events, kept for purge_after seconds after they served
    anything. idp serve does this every purge_interval seconds on its own."""
    purged = housekeeping.purge(idp().settings, actor="cli")
    if as_json:
        emit_json(purged.as_dict())
        return
    for kind, count in purged.as_dict().items():
        click.echo(f"{count:>8}  {kind.replace('_', ' ')}")
