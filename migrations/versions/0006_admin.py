"""Administrators and forced password resets on the user row.

Revision ID: 0006_admin
Revises: 0005_restoration
Create Date: 2026-11-23 14:00:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006_admin"
down_revision = "0005_restoration"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column(
                "password_reset_required",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    op.create_index(op.f("ix_audit_events_type_at"), "audit_events", ["type", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_events_type_at"), table_name="audit_events")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_reset_required")
        batch.drop_column("is_admin")
