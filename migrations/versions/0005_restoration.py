"""Restoration: code 1 and the backup prompt per user; restored devices pending
a veto window.

Revision ID: 0005_restoration
Revises: 0004_passkeys
Create Date: 2026-11-24 12:00:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005_restoration"
down_revision = "0004_passkeys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "restoration_setups",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=True),
        sa.Column("code_device_id", sa.String(length=32), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prompt_dismissed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["code_device_id"],
            ["devices.id"],
            name=op.f("fk_restoration_setups_code_device_id_devices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_restoration_setups_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_restoration_setups")),
    )
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("pending_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("pending_until")
    op.drop_table("restoration_setups")
