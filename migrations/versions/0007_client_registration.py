"""Dynamic client registration (RFC 7591 / RFC 7592): initial access tokens;
per client its contacts, whether it registered itself, and the digest of its
registration access token.

Revision ID: 0007_client_registration
Revises: 0006_admin
Create Date: 2026-11-25 10:00:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007_client_registration"
down_revision = "0006_admin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "initial_access_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("uses_left", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_initial_access_tokens")),
        sa.UniqueConstraint("digest", name=op.f("uq_initial_access_tokens_digest")),
    )
    with op.batch_alter_table("clients") as batch:
        # Existing registrations: no contacts, registered by an administrator.
        batch.add_column(
            sa.Column("contacts", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(
            sa.Column(
                "dynamically_registered",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
        batch.add_column(
            sa.Column("registration_token_digest", sa.String(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("registration_token_digest")
        batch.drop_column("dynamically_registered")
        batch.drop_column("contacts")
    op.drop_table("initial_access_tokens")
