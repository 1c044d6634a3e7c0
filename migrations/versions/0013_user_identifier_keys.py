"""A sign-in finds the user by index: ``username_key`` and ``email_key``, the
user name and the e-mail address in lower case (``identifier_key``), each
indexed, the user name's unique. Until now a sign-in compared ``lower()`` of
every row's column (no index serves that: each login read the whole users
table), and user names differing only in case were kept apart only by the
service's check, which two requests at once could both pass.

User names that already collide (only such a race could store them): the
first account keeps the name's key; the others keep their user name but have
no key, so they sign in with their access number or e-mail address, as they
in effect had to before (a sign-in found the first). The migration names them.

Revision ID: 0013_user_identifier_keys
Revises: 0012_device_name_key
Create Date: 2027-01-19 10:00:00
"""

import logging

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0013_user_identifier_keys"
down_revision = "0012_device_name_key"
branch_labels = None
depends_on = None

logger = logging.getLogger("alembic.runtime.migration")

users = sa.table(
    "users",
    sa.column("id", sa.Integer),
    sa.column("username", sa.String),
    sa.column("username_key", sa.String),
    sa.column("email", sa.String),
    sa.column("email_key", sa.String),
)


def upgrade() -> None:
    # Plain ALTER TABLE and CREATE INDEX, on SQLite too: no copy of the table.
    op.add_column("users", sa.Column("username_key", sa.String(length=128), nullable=True))
    op.add_column("users", sa.Column("email_key", sa.String(length=508), nullable=True))
    connection = op.get_bind()
    holders: dict[str, int] = {}
    rows = connection.execute(
        sa.select(users.c.id, users.c.username, users.c.email)
        .where(sa.or_(users.c.username.is_not(None), users.c.email.is_not(None)))
        .order_by(users.c.id)
    )
    for id_, username, email in list(rows):
        username_key = None if username is None else username.lower()
        if username_key is not None and username_key in holders:
            logger.warning(
                "user %s has the user name of user %s (in another case): it signs in"
                " with its access number or e-mail address until it gets another",
                id_,
                holders[username_key],
            )
            username_key = None
        elif username_key is not None:
            holders[username_key] = id_
        connection.execute(
            users.update()
            .where(users.c.id == id_)
            .values(username_key=username_key, email_key=None if email is None else email.lower())
        )
    op.create_index(op.f("ix_users_username_key"), "users", ["username_key"], unique=True)
    op.create_index(op.f("ix_users_email_key"), "users", ["email_key"], unique=False)
    op.drop_index(op.f("ix_users_email"), table_name="users")


def downgrade() -> None:
    op.create_index(op.f("ix_users_email"), "users", ["email"], unique=False)
    op.drop_index(op.f("ix_users_email_key"), table_name="users")
    op.drop_index(op.f("ix_users_username_key"), table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_key")
        batch.drop_column("username_key")
