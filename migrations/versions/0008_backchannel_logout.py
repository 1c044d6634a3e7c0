"""OpenID Connect Back-Channel Logout 1.0: per client its back-channel logout
URI and whether it needs the sid; per login session the clients it signed in
to (with the sid each was told).

Revision ID: 0008_backchannel_logout
Revises: 0007_client_registration
Create Date: 2026-11-26 10:00:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008_backchannel_logout"
down_revision = "0007_client_registration"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("backchannel_logout_uri", sa.String(length=500), nullable=True))
        # Existing registrations: no back-channel logout.
        batch.add_column(
            sa.Column(
                "backchannel_logout_session_required",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    op.create_table(
        "login_session_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["login_sessions.id"],
            name=op.f("fk_login_session_clients_session_id_login_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_session_clients")),
        sa.UniqueConstraint(
            "session_id",
            "client_id",
            "sid",
            name=op.f("uq_login_session_clients_session_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("login_session_clients")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("backchannel_logout_session_required")
        batch.drop_column("backchannel_logout_uri")
