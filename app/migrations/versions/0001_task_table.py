"""task table: the REST service's sync tasks, at most one syncing per region

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:45:20

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SYNCING_ONLY = sa.text("status = 'syncing'")


def upgrade():
    op.create_table(
        "task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("region", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("images", sa.Text(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=False),
        sa.Column("heartbeat", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id"),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        # The database itself refuses a second syncing task of a region (reference 10.7).
        batch_op.create_index(
            "ix_task_one_syncing_per_region", ["region"], unique=True,
            sqlite_where=SYNCING_ONLY, postgresql_where=SYNCING_ONLY,
        )
        batch_op.create_index(batch_op.f("ix_task_region"), ["region"], unique=False)


def downgrade():
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_region"))
        batch_op.drop_index("ix_task_one_syncing_per_region")
    op.drop_table("task")
