"""issue 21: a queued task handed to another caller is never withdrawn by its creator

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 07:00:00

A creator that finds the region busy after its insert withdraws its queued task; another
request may have been answered with that task meanwhile (a follow-up, or with a broker
any request). ``handed_out`` marks such a task: the withdrawal spares it.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("task") as batch_op:
        batch_op.add_column(
            sa.Column("handed_out", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table("task") as batch_op:
        batch_op.drop_column("handed_out")
