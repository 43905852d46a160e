"""web page sessions: the Keystone token of each signed-in browser, kept server-side

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 04:00:00

The browser holds only a random session id (HttpOnly cookie); the row is found by its
SHA-256, so any server process or host serves the session (issue 16).
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ui_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("expires", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_hash"),
    )
    op.create_index("ix_ui_session_expires", "ui_session", ["expires"])


def downgrade():
    op.drop_index("ix_ui_session_expires", table_name="ui_session")
    op.drop_table("ui_session")
