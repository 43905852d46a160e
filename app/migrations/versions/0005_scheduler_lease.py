"""scheduler lease: one row per schedule, so one process fires it across workers and hosts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 04:00:00

The holder renews ``expires`` while it lives; ``next_run`` moves on by a conditional
UPDATE when a run fires, so even two processes that both believe they hold the lease
cannot fire the same run twice (issue 17).
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("expires", sa.DateTime(), nullable=False),
        sa.Column("next_run", sa.DateTime(), nullable=True),
        sa.Column("last_run", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade():
    op.drop_table("scheduler_lease")
