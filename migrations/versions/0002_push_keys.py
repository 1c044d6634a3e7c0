"""Web Push: the VAPID key pair (RFC 8292) every instance signs with.

Revision ID: 0002_push
Revises: 0001_initial
Create Date: 2026-11-23 10:00:00

The private key is AES-256-GCM encrypted under a subkey of the key
encryption key (``idp.push.keys``); the oldest row is the key in use.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002_push"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vapid_keys",
        # No sequence: the application claims ids (the first key is id 1).
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("public_key", sa.String(length=100), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vapid_keys")),
        sa.UniqueConstraint("public_key", name=op.f("uq_vapid_keys_public_key")),
    )


def downgrade() -> None:
    op.drop_table("vapid_keys")
