"""The Alembic migrations build the schema the models describe, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    MetaData,
    String,
    bindparam,
    column,
    insert,
    inspect,
    text,
)
from sqlalchemy import table as sql_table
from sqlalchemy.exc import IntegrityError

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


def add_users(connection: Any, ids: tuple[int, ...], created_at: datetime) -> None:
    """Bare user rows, written as the migrations of the test left the table."""
    at = DateTime(timezone=True)
    users = sql_table(
        "users", column("id"), column("sub"), column("access_number"), column("email_verified"),
        column("phone_number_verified"), column("status"), column("created_at", at),
        column("updated_at", at),
    )  # fmt: skip
    for user_id in ids:
        connection.execute(
            insert(users).values(
                id=user_id, sub=f"sub-{user_id}", access_number=f"N{user_id}",
                email_verified=False, phone_number_verified=False, status="active",
                created_at=created_at, updated_at=created_at,
            )
        )  # fmt: skip


def test_passkey_names_that_collide_are_numbered_when_names_become_unique(
    migrations: Migrations,
) -> None:
    """0011 makes a user's passkey names unique without regard to case; names
    stored before that collide (two tabs at once could store them) are kept
    apart by a number, the first registered keeping its name."""
    migrations.upgrade("0010_session_confirmation")
    at = DateTime(timezone=True)
    passkeys = sql_table(
        "passkeys", column("id"), column("user_id"), column("name"), column("credential_id"),
        column("public_key"), column("sign_count"), column("attestation_fmt"),
        column("backup_eligible"), column("backed_up"), column("transports", JSON),
        column("created_at", at),
    )  # fmt: skip
    registered = datetime(2026, 12, 1, tzinfo=UTC)
    with migrations.app.app_context(), db.engine.begin() as connection:
        add_users(connection, (1, 2), registered)
        for n, (user_id, name) in enumerate(
            [(1, "Laptop"), (1, "LAPTOP"), (1, "laptop"), (1, "Phone"), (2, "Laptop")]
        ):
            connection.execute(
                insert(passkeys).values(
                    id=f"pk{n}", user_id=user_id, name=name, credential_id=bytes([n]),
                    public_key=b"k", sign_count=0, attestation_fmt="none",
                    backup_eligible=False, backed_up=False, transports=[],
                    created_at=registered + timedelta(minutes=n),
                )
            )  # fmt: skip

    migrations.upgrade()
    with migrations.app.app_context(), db.engine.begin() as connection:
        rows = connection.execute(text("SELECT id, name, name_key FROM passkeys ORDER BY id")).all()
        assert [tuple(row) for row in rows] == [
            ("pk0", "Laptop", "laptop"),
            ("pk1", "LAPTOP (2)", "laptop (2)"),
            ("pk2", "laptop (3)", "laptop (3)"),
            ("pk3", "Phone", "phone"),
            ("pk4", "Laptop", "laptop"),
        ]
        # From now on the database refuses a name the user has, in any case.
        with pytest.raises(IntegrityError):
            connection.execute(
                text(
                    "INSERT INTO passkeys (id, user_id, name, name_key, credential_id, public_key,"
                    " sign_count, attestation_fmt, backup_eligible, backed_up, transports)"
                    " VALUES ('pk9', 1, 'PHONE', 'phone', :c, :k, 0, 'none', false, false, '[]')"
                ),
                {"c": b"\x09", "k": b"k"},
            )


def test_active_device_names_that_collide_are_numbered_when_names_become_unique(
    migrations: Migrations,
) -> None:
    """0012 makes the names of a user's active devices unique without regard
    to case; active names stored before that collide (two enrolments at once
    could store them) are kept apart by a number, the first enrolled keeping
    its name; a deleted device keeps its name and takes none from the others."""
    migrations.upgrade("0011_passkey_name_key")
    at = DateTime(timezone=True)
    devices = sql_table(
        "devices", column("id"), column("user_id"), column("name"), column("kind"),
        column("enrolled_via"), column("credential_id"), column("public_key"),
        column("sign_count"), column("attestation_fmt"), column("backup_eligible"),
        column("backed_up"), column("transports", JSON), column("token_digest"),
        column("created_at", at), column("revoked_at", at),
    )  # fmt: skip
    enrolled = datetime(2026, 12, 1, tzinfo=UTC)
    with migrations.app.app_context(), db.engine.begin() as connection:
        add_users(connection, (1, 2), enrolled)
        for n, (user_id, name, revoked) in enumerate(
            [
                (1, "iPhone", True), (1, "iPhone", False), (1, "IPHONE", False),
                (1, "Tablet", False), (2, "iPhone", False),
            ]
        ):  # fmt: skip
            connection.execute(
                insert(devices).values(
                    id=f"d{n}", user_id=user_id, name=name, kind="iphone",
                    enrolled_via="binding_code", credential_id=bytes([n]), public_key=b"k",
                    sign_count=0, attestation_fmt="none", backup_eligible=False,
                    backed_up=False, transports=[], token_digest=f"{n:064d}",
                    created_at=enrolled + timedelta(minutes=n),
                    revoked_at=enrolled + timedelta(hours=1) if revoked else None,
                )
            )  # fmt: skip

    migrations.upgrade()
    with migrations.app.app_context(), db.engine.begin() as connection:
        rows = connection.execute(text("SELECT id, name, name_key FROM devices ORDER BY id")).all()
        assert [tuple(row) for row in rows] == [
            ("d0", "iPhone", "iphone"),
            ("d1", "iPhone", "iphone"),
            ("d2", "IPHONE (2)", "iphone (2)"),
            ("d3", "Tablet", "tablet"),
            ("d4", "iPhone", "iphone"),
        ]
        # From now on the database refuses an active name the user has, in any case.
        with pytest.raises(IntegrityError):
            connection.execute(
                text(
                    "INSERT INTO devices (id, user_id, name, name_key, kind, enrolled_via,"
                    " credential_id, public_key, sign_count, attestation_fmt, backup_eligible,"
                    " backed_up, transports, token_digest, created_at) VALUES ('d9', 1, 'TABLET',"
                    " 'tablet', 'iphone', 'binding_code', :c, :k, 0, 'none', false, false, '[]',"
                    " :t, :at)"
                ).bindparams(bindparam("at", type_=at)),
                {"c": b"\x09", "k": b"k", "t": "9" * 64, "at": enrolled},
            )


def test_user_names_and_addresses_get_their_keys_and_a_name_in_two_cases_keeps_one(
    migrations: Migrations, caplog: pytest.LogCaptureFixture
) -> None:
    """0013 keys user names and e-mail addresses in lower case (what a sign-in
    looks up); of user names stored in two cases before (only a race could)
    the first account keeps the key, the other is named in the log."""
    migrations.upgrade("0012_device_name_key")
    created = datetime(2026, 12, 1, tzinfo=UTC)
    with migrations.app.app_context(), db.engine.begin() as connection:
        add_users(connection, (1, 2, 3, 4), created)
        users = sql_table("users", column("id"), column("username"), column("email"))
        for user_id, username, email in [
            (1, "ÜberMut", "Ärger@Example.org"), (2, "übermut", None),
            (3, None, "ärger@example.org"), (4, "erika", None),
        ]:  # fmt: skip
            connection.execute(
                users.update().where(users.c.id == user_id).values(username=username, email=email)
            )

    with caplog.at_level("WARNING"):
        migrations.upgrade()
    with migrations.app.app_context(), db.engine.begin() as connection:
        rows = connection.execute(
            text("SELECT id, username, username_key, email_key FROM users ORDER BY id")
        ).all()
        assert [tuple(row) for row in rows] == [
            (1, "ÜberMut", "übermut", "ärger@example.org"),
            (2, "übermut", None, None),
            (3, None, None, "ärger@example.org"),
            (4, "erika", "erika", None),
        ]
        assert "user 2 has the user name of user 1" in caplog.text
        with pytest.raises(IntegrityError):
            connection.execute(text("UPDATE users SET username_key = 'erika' WHERE id = 3"))


def test_a_table_copied_by_a_migration_keeps_the_rows_referring_to_it(
    migrations: Migrations,
) -> None:
    """SQLite alters a table by copying it; with foreign keys enforced the
    drop of the old table ran the ON DELETE actions of the rows referring to
    it (0011 and 0012 cleared every session's passkey and device)."""
    migrations.upgrade("0010_session_confirmation")
    at = DateTime(timezone=True)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with migrations.app.app_context(), db.engine.begin() as connection:
        add_users(connection, (1,), now)
        connection.execute(
            text(
                "INSERT INTO passkeys (id, user_id, name, credential_id, public_key, sign_count,"
                " attestation_fmt, backup_eligible, backed_up, transports, created_at)"
                " VALUES ('pk0', 1, 'Laptop', :c, :k, 0, 'none', false, false, '[]', :at)"
            ).bindparams(bindparam("at", type_=at)),
            {"c": b"\x01", "k": b"k", "at": now},
        )
        connection.execute(
            text(
                "INSERT INTO devices (id, user_id, name, kind, enrolled_via, credential_id,"
                " public_key, sign_count, attestation_fmt, backup_eligible, backed_up,"
                " transports, token_digest, created_at) VALUES ('d0', 1, 'Phone', 'iphone',"
                " 'binding_code', :c, :k, 0, 'none', false, false, '[]', :t, :at)"
            ).bindparams(bindparam("at", type_=at)),
            {"c": b"\x02", "k": b"k", "t": "0" * 64, "at": now},
        )
        connection.execute(
            text(
                "INSERT INTO login_sessions (id, secret_digest, user_id, auth_time, amr, acr,"
                " created_at, expires_at, device_id, passkey_id) VALUES ('s0', 'digest', 1,"
                " :at, '[]', 'acr', :at, :at, 'd0', 'pk0')"
            ).bindparams(bindparam("at", type_=at)),
            {"at": now},
        )

    migrations.upgrade()
    with migrations.app.app_context(), db.engine.begin() as connection:
        row = connection.execute(
            text("SELECT device_id, passkey_id FROM login_sessions WHERE id = 's0'")
        ).one()
        assert tuple(row) == ("d0", "pk0")
        assert connection.execute(text("SELECT count(*) FROM passkeys")).scalar() == 1
        # Foreign keys are enforced again on the connections the pool hands out.
        with pytest.raises(IntegrityError):
            connection.execute(text("UPDATE login_sessions SET device_id = 'gone'"))
