"""Token families: one row per authorization, which every issue and every
revocation of its tokens updates first (RFC 9700 §4.14.2: once a family is
revoked, no token of it works, including one being issued at that moment).

Existing refresh tokens get the families they name, revoked where every token
of the family is.

Revision ID: 0009_token_families
Revises: 0008_backchannel_logout
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009_token_families"
down_revision = "0008_backchannel_logout"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_families",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_token_families_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_families")),
    )
    op.create_index(op.f("ix_token_families_client_id"), "token_families", ["client_id"])
    op.create_index(op.f("ix_token_families_user_id"), "token_families", ["user_id"])
    op.create_index(op.f("ix_token_families_sid"), "token_families", ["sid"])
    op.execute(
        """
        INSERT INTO token_families (id, client_id, user_id, sid, created_at, last_used_at,
                                    revoked_at)
        SELECT family_id, MIN(client_id), MIN(user_id), MIN(sid), MIN(issued_at),
               MAX(issued_at),
               CASE WHEN COUNT(revoked_at) = COUNT(*) THEN MAX(revoked_at) END
        FROM refresh_tokens
        GROUP BY family_id
        """
    )
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.create_foreign_key(
            op.f("fk_refresh_tokens_family_id_token_families"),
            "token_families",
            ["family_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_constraint(
            op.f("fk_refresh_tokens_family_id_token_families"), type_="foreignkey"
        )
    op.drop_index(op.f("ix_token_families_sid"), table_name="token_families")
    op.drop_index(op.f("ix_token_families_user_id"), table_name="token_families")
    op.drop_index(op.f("ix_token_families_client_id"), table_name="token_families")
    op.drop_table("token_families")
