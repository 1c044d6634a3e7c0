"""The ``idp`` command groups: users, clients, keys, devices and the audit log;
``idp purge``; and ``idp db``, Flask-Migrate's, loaded when used.

One module per group; ``create_app()`` attaches them (``register``). The
``idp`` command itself, with ``serve`` and ``demo``, is ``idp.__main__``.
Commands that list things take ``--json`` and print one JSON document on
stdout; messages for people go to stderr.
"""

from __future__ import annotations

from typing import Any, cast

import click
from flask import Flask
from flask.cli import ScriptInfo

from ..extensions import init_migrations
from . import audit, clients, devices, housekeeping, keys, users

__all__ = ["register"]


def register(app: Flask) -> None:
    """Attach the command groups to an app (create_app calls this)."""
    for module in (users, clients, keys, devices, audit):
        app.cli.add_command(module.group)
    app.cli.add_command(housekeeping.command)
    app.cli.add_command(MigrationCommands("db", help="Database migrations (Flask-Migrate)."))


class MigrationCommands(click.Group):
    """``idp db``: Flask-Migrate's commands, imported when the group is run or
    its commands listed (``init_migrations``: the servers never load alembic),
    with Flask-Migrate's own options (``-d``, ``-x``) and callback."""

    def _commands(self, ctx: click.Context) -> click.Group:
        from flask_migrate.cli import db as commands

        init_migrations(ctx.ensure_object(ScriptInfo).load_app())
        self.params, self.callback = commands.params, commands.callback
        return cast("click.Group", commands)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        self._commands(ctx)
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._commands(ctx).list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Any:
        return self._commands(ctx).get_command(ctx, cmd_name)
