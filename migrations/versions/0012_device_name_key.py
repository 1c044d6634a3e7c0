"""A user's active devices' names are unique in the database too: ``name_key``
(the name case-folded, as the service compares names) with a unique index on
(user, name_key) over the devices not deleted. Two enrolments or renames at the
same moment both passed the check before their write; now the second write
meets the index. Active names that already collide get a number: "iPhone",
"iphone (2)"; a deleted device keeps its name.

Revision ID: 0012_device_name_key
Revises: 0011_passkey_name_key
Create Date: 2027-01-18 10:00:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012_device_name_key"
down_revision = "0011_passkey_name_key"
branch_labels = None
depends_on = None

devices = sa.table(
    "devices",
    sa.column("id", sa.String),
    sa.column("user_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("name_key", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("revoked_at", sa.DateTime),
)

ACTIVE = sa.text("revoked_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("name_key", sa.String(length=300), nullable=True))
    connection = op.get_bind()
    taken: set[tuple[int, str]] = set()
    rows = connection.execute(
        sa.select(devices.c.id, devices.c.user_id, devices.c.name, devices.c.revoked_at).order_by(
            devices.c.user_id, devices.c.created_at, devices.c.id
        )
    )
    for id_, user_id, name, revoked_at in list(rows):
        new_name, number = name, 1
        if revoked_at is None:
            while (user_id, new_name.casefold()) in taken:
                number += 1
                new_name = f"{name[: 100 - len(f' ({number})')]} ({number})"
            taken.add((user_id, new_name.casefold()))
        connection.execute(
            devices.update()
            .where(devices.c.id == id_)
            .values(name=new_name, name_key=new_name.casefold())
        )
    with op.batch_alter_table("devices") as batch:
        batch.alter_column("name_key", existing_type=sa.String(length=300), nullable=False)
    op.create_index(
        "uq_devices_user_id_name_key_active",
        "devices",
        ["user_id", "name_key"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_devices_user_id_name_key_active", table_name="devices")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("name_key")
