"""The Alembic migrations build the schema the models describe, on every backend."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, inspect

from idp.extensions import db

from .conftest import Migrations


def schema_diff(migrations: Migrations, metadata: MetaData) -> list[Any]:
    """What autogenerate would put into a new revision for ``metadata``."""
    with migrations.app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, metadata))


def tables(migrations: Migrations) -> set[str]:
    with migrations.app.app_context():
        return set(inspect(db.engine).get_table_names())


def current_revision(migrations: Migrations) -> str | None:
    with migrations.app.app_context(), db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_one_line_of_revisions(migrations: Migrations) -> None:
    # Two engineers adding a revision each make two heads; merge them.
    heads = ScriptDirectory.from_config(migrations.config).get_heads()
    assert len(heads) == 1, heads


def test_upgrade_downgrade_and_upgrade_again(migrations: Migrations) -> None:
    model_tables = set(db.metadata.tables)
    assert model_tables
    head = ScriptDirectory.from_config(migrations.config).get_current_head()

    migrations.upgrade()
    assert tables(migrations) == model_tables | {"alembic_version"}
    assert current_revision(migrations) == head

    migrations.downgrade("base")
    assert tables(migrations) == {"alembic_version"}
    assert current_revision(migrations) is None

    migrations.upgrade()
    assert tables(migrations) == model_tables | {"alembic_version"}
    assert current_revision(migrations) == head


def test_models_match_the_migration_head(migrations: Migrations) -> None:
    migrations.upgrade()
    # Not empty: a model change needs a revision (flask db migrate -m "...").
    assert schema_diff(migrations, db.metadata) == []


def test_the_comparison_sees_a_column_without_a_revision(migrations: Migrations) -> None:
    """Guards the test above against comparing nothing."""
    migrations.upgrade()
    changed = MetaData(naming_convention=db.metadata.naming_convention)
    for table in db.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["users"].append_column(Column("nickname", String(40)))

    diff = schema_diff(migrations, changed)
    assert [(op[0], op[2], op[3].name) for op in diff] == [("add_column", "users", "nickname")]
