"""Passkey names are unique per user in the database too: ``name_key`` (the
name case-folded, as the account page compares names) with a unique index on
(user, name_key). Two tabs registering the same name at once both passed the
check before their insert; now the second insert fails and is refused. Names
that already collide get a number: "Laptop", "laptop (2)".

Revision ID: 0011_passkey_name_key
Revises: 0010_session_confirmation
Create Date: 2027-01-17 10:00:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0011_passkey_name_key"
down_revision = "0010_session_confirmation"
branch_labels = None
depends_on = None

passkeys = sa.table(
    "passkeys",
    sa.column("id", sa.String),
    sa.column("user_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("name_key", sa.String),
    sa.column("created_at", sa.DateTime),
)


def upgrade() -> None:
    with op.batch_alter_table("passkeys") as batch:
        batch.add_column(sa.Column("name_key", sa.String(length=300), nullable=True))
    connection = op.get_bind()
    taken: set[tuple[int, str]] = set()
    rows = connection.execute(
        sa.select(passkeys.c.id, passkeys.c.user_id, passkeys.c.name).order_by(
            passkeys.c.user_id, passkeys.c.created_at, passkeys.c.id
        )
    )
    for id_, user_id, name in list(rows):
        new_name, number = name, 1
        while (user_id, new_name.casefold()) in taken:
            number += 1
            new_name = f"{name[: 100 - len(f' ({number})')]} ({number})"
        taken.add((user_id, new_name.casefold()))
        connection.execute(
            passkeys.update()
            .where(passkeys.c.id == id_)
            .values(name=new_name, name_key=new_name.casefold())
        )
    with op.batch_alter_table("passkeys") as batch:
        batch.alter_column("name_key", existing_type=sa.String(length=300), nullable=False)
        batch.create_unique_constraint(
            op.f("uq_passkeys_user_id_name_key"), ["user_id", "name_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("passkeys") as batch:
        batch.drop_constraint(op.f("uq_passkeys_user_id_name_key"), type_="unique")
        batch.drop_column("name_key")
