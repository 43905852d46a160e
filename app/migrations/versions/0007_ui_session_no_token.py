"""issue 22: web page sessions keep no Keystone token (drop ui_session.token); the
failed sign-ins of the last minutes (signin_failure), counted by every process

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 05:40:00

A copy of the database must let nobody act on an OpenStack API: the user's token now
lives only encrypted in the browser's cookie, with a key the database does not hold.
The sessions of before the upgrade held raw tokens: they are deleted (their users sign
in again) before the column goes. Sign-in throttling counts failures per address and
per user in ``signin_failure``; rows older than the throttle's window are deleted as new
ones come.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DELETE FROM ui_session")
    with op.batch_alter_table("ui_session") as batch:
        batch.drop_column("token")
    op.create_table(
        "signin_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signin_failure_key_at", "signin_failure", ["key", "at"])
    op.create_index("ix_signin_failure_at", "signin_failure", ["at"])


def downgrade():
    op.drop_index("ix_signin_failure_at", table_name="signin_failure")
    op.drop_index("ix_signin_failure_key_at", table_name="signin_failure")
    op.drop_table("signin_failure")
    # Sessions of this version have no token to restore: they end.
    op.execute("DELETE FROM ui_session")
    with op.batch_alter_table("ui_session") as batch:
        batch.add_column(sa.Column("token", sa.Text(), nullable=False, server_default=""))
