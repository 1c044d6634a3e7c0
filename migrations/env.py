"""Alembic environment for Flask-Migrate: the engine and metadata come from the app.

Run it through ``idp db ...`` or ``flask_migrate.upgrade()`` (after
``idp.extensions.init_migrations``), or alembic's commands, inside an app
context of ``idp.app.create_app``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from flask import current_app
from sqlalchemy import MetaData, TypeDecorator
from sqlalchemy.engine import Connection, Engine

config = context.config

# Callers that already configured logging (the test suite) set
# ``config.attributes["configure_logger"] = False``; the CLI gets alembic.ini's.
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

# Stated here rather than relying on Flask-Migrate's defaults:
# batch mode lets SQLite "ALTER" tables (by copying them); on PostgreSQL it emits
# plain ALTER statements. compare_type makes autogenerate notice type changes.
CONTEXT_OPTIONS: dict[str, Any] = {"render_as_batch": True, "compare_type": True}


# The app's Flask-SQLAlchemy: run through Flask-Migrate (``idp db``) or
# through alembic's own commands with the app's context (the tests, the bench).
def get_engine() -> Engine:
    return current_app.extensions["sqlalchemy"].engine  # type: ignore[no-any-return]


def get_metadata() -> MetaData:
    return current_app.extensions["sqlalchemy"].metadata  # type: ignore[no-any-return]


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render our TypeDecorators (``UTCDateTime``) as their plain SQL type.

    Revisions then never import application code, which may change after them;
    the Python-side conversion belongs to the models, not to the schema.
    """
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``flask db upgrade --sql``) instead of running it."""
    context.configure(
        url=get_engine().url.render_as_string(hide_password=False),
        target_metadata=get_metadata(),
        literal_binds=True,
        render_item=render_item,
        **CONTEXT_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    def process_revision_directives(context: Any, revision: Any, directives: list[Any]) -> None:
        # No empty revision when autogenerate finds nothing to do.
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    migrate = current_app.extensions.get("migrate")
    conf_args = dict(migrate.configure_args) if migrate is not None else {}
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("render_item", render_item)
    conf_args.update(CONTEXT_OPTIONS)

    with get_engine().connect() as connection, foreign_keys_deferred(connection):
        context.configure(connection=connection, target_metadata=get_metadata(), **conf_args)
        with context.begin_transaction():
            context.run_migrations()
            check_foreign_keys(connection)


@contextmanager
def foreign_keys_deferred(connection: Connection) -> Iterator[None]:
    """SQLite: foreign keys are not enforced while the migrations run.

    Batch mode alters a SQLite table by copying it and dropping the old one,
    and with foreign keys enforced that drop deletes the rows referring to it
    first, running their ON DELETE actions: copying ``users`` would delete
    every passkey and device with CASCADE, copying ``devices`` would clear
    the sessions' ``device_id`` (SET NULL). SQLite's documented way to change
    a table's schema: foreign keys off (outside a transaction), the change,
    ``PRAGMA foreign_key_check``, foreign keys on again; the connection goes
    back to the pool with them on.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def check_foreign_keys(connection: Connection) -> None:
    """Refuse to finish migrations that left a reference to a missing row."""
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = sorted({f"{row[0]} -> {row[2]}" for row in broken})
        raise RuntimeError(f"the migrations left rows referring to no row: {', '.join(tables)}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
