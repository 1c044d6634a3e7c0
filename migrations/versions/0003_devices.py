"""Devices for push approval, and the clients' fallback without a device.

Revision ID: 0003_devices
Revises: 0002_push
Create Date: 2026-11-23 10:30:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003_devices"
down_revision = "0002_push"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("enrolled_via", sa.String(length=32), nullable=False),
        sa.Column("credential_id", sa.LargeBinary(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        sa.Column("aaguid", sa.String(length=36), nullable=True),
        sa.Column("attestation_fmt", sa.String(length=32), nullable=False),
        sa.Column("backup_eligible", sa.Boolean(), nullable=False),
        sa.Column("backed_up", sa.Boolean(), nullable=False),
        sa.Column("transports", sa.JSON(), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("push_subscription", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_devices_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_devices_credential_id")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_devices_token_digest")),
    )
    op.create_index(op.f("ix_devices_user_id"), "devices", ["user_id"])
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("mfa_fallback", sa.String(length=16), nullable=False, server_default="refuse")
        )


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("mfa_fallback")
    op.drop_index(op.f("ix_devices_user_id"), table_name="devices")
    op.drop_table("devices")
