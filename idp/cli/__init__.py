"""The ``idp`` command: serve, migrations, users, clients, keys and the demo.

``idp`` is a Flask CLI group around ``create_app()``, so ``idp db ...``
(Flask-Migrate), ``idp routes`` and ``idp shell`` come with it. Commands that
list things take ``--json`` and print one JSON document on stdout; messages
for people go to stderr.
"""

from __future__ import annotations

from flask import Flask

from . import audit, clients, devices, keys, users
from .serve import main

__all__ = ["main", "register"]


def register(app: Flask) -> None:
    """Attach the command groups to an app (create_app calls this)."""
    for module in (users, clients, keys, devices, audit):
        app.cli.add_command(module.group)
