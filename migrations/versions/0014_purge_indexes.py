"""Indexes for the purge (idp.housekeeping): it deletes login sessions that
ended or expired, refresh tokens that expired and token families whose last
token expired (found by their creation, which comes before), a batch at a
time; without these each batch read the whole table.

Revision ID: 0014_purge_indexes
Revises: 0013_user_identifier_keys
Create Date: 2027-01-20 10:00:00
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0014_purge_indexes"
down_revision = "0013_user_identifier_keys"
branch_labels = None
depends_on = None

INDEXES = [
    ("login_sessions", "ix_login_sessions_expires_at", ["expires_at"]),
    ("login_sessions", "ix_login_sessions_ended_at", ["ended_at"]),
    ("refresh_tokens", "ix_refresh_tokens_expires_at", ["expires_at"]),
    # Not last_used_at, which every refresh updates (see the model).
    ("token_families", "ix_token_families_created_at", ["created_at"]),
]


def upgrade() -> None:
    for table, name, columns in INDEXES:
        op.create_index(op.f(name), table, columns, unique=False)


def downgrade() -> None:
    for table, name, _columns in reversed(INDEXES):
        op.drop_index(op.f(name), table_name=table)
