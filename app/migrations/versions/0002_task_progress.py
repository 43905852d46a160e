"""task progress and cancel: per-upload progress (JSON text) and the cancel request

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:00:00

Both go through the database because the GET or the cancel may reach another server
process than the one running the sync (issue 7, item 4).
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("cancel_requested")
        batch_op.drop_column("progress")
