"""task leases: the worker's scope and at most one queued task per region

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 03:40:00

Issue 12 (reference 10.7): a task is a lease held by one process start (``worker``); its pid is
checked only within the same boot and pid namespace (``worker_scope``). The new status
``queued`` gets its own partial unique index, as ``syncing`` has since 0001.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

QUEUED_ONLY = sa.text("status = 'queued'")


def upgrade():
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("worker_scope", sa.String(length=128), nullable=False, server_default="")
        )
        batch_op.create_index(
            "ix_task_one_queued_per_region",
            ["region"],
            unique=True,
            sqlite_where=QUEUED_ONLY,
            postgresql_where=QUEUED_ONLY,
        )


def downgrade():
    # Queued tasks never ran: they go with the status they need.
    op.execute("DELETE FROM task WHERE status = 'queued'")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index("ix_task_one_queued_per_region")
        batch_op.drop_column("worker_scope")
