"""Login sessions remember what confirmed them (the device or the passkey,
so deleting it can end what it confirmed) and when they were last active.

Revision ID: 0010_session_confirmation
Revises: 0009_token_families
Create Date: 2027-01-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010_session_confirmation"
down_revision = "0009_token_families"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("login_sessions") as batch:
        batch.add_column(sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("device_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("passkey_id", sa.String(length=32), nullable=True))
        batch.create_foreign_key(
            op.f("fk_login_sessions_device_id_devices"),
            "devices",
            ["device_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            op.f("fk_login_sessions_passkey_id_passkeys"),
            "passkeys",
            ["passkey_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index(op.f("ix_login_sessions_device_id"), ["device_id"])
        batch.create_index(op.f("ix_login_sessions_passkey_id"), ["passkey_id"])


def downgrade() -> None:
    with op.batch_alter_table("login_sessions") as batch:
        batch.drop_index(op.f("ix_login_sessions_passkey_id"))
        batch.drop_index(op.f("ix_login_sessions_device_id"))
        batch.drop_constraint(op.f("fk_login_sessions_passkey_id_passkeys"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_login_sessions_device_id_devices"), type_="foreignkey")
        batch.drop_column("passkey_id")
        batch.drop_column("device_id")
        batch.drop_column("last_active_at")
