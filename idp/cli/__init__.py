"""The ``idp`` command groups: users, clients, keys, devices and the audit log;
and ``idp purge``.

One module per group; ``create_app()`` attaches them (``register``). The
``idp`` command itself, with ``serve`` and ``demo``, is ``idp.__main__``.
Commands that list things take ``--json`` and print one JSON document on
stdout; messages for people go to stderr.
"""

from __future__ import annotations

from flask import Flask

from . import audit, clients, devices, housekeeping, keys, users

__all__ = ["register"]


def register(app: Flask) -> None:
    """Attach the command groups to an app (create_app calls this)."""
    for module in (users, clients, keys, devices, audit):
        app.cli.add_command(module.group)
    app.cli.add_command(housekeeping.command)
