"""MySQL/MariaDB: the per-region rules enforced by the database, lease times to microseconds

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 06:00:00

Issue 24, item 2. MySQL and MariaDB have no partial index: 0001 and 0003 created plain
unique indexes on ``region`` there (one task row per region, ever). This revision
replaces them with unique indexes of the same names on generated columns that hold the
region only while the task is ``syncing`` (``queued``), NULL otherwise; a unique index
admits any number of NULLs. Their DATETIME columns, whole seconds by default, become
DATETIME(6): a heartbeat is compared for equality with the value written. SQLite and
PostgreSQL keep their partial indexes and microsecond times: nothing changes there.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# (generated column, status, index name): the model's MYSQL_REGION_SLOTS when written.
SLOTS = (
    ("syncing_region", "syncing", "ix_task_one_syncing_per_region"),
    ("queued_region", "queued", "ix_task_one_queued_per_region"),
)
# (table, column, nullable): every time a lease or the scheduler compares.
TIMES = (
    ("task", "created", False),
    ("task", "updated", False),
    ("task", "heartbeat", False),
    ("scheduler_lease", "expires", False),
    ("scheduler_lease", "next_run", True),
    ("scheduler_lease", "last_run", True),
)


def _mysql():
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade():
    if not _mysql():
        return
    for column, status, index in SLOTS:
        op.execute(
            f"ALTER TABLE task DROP INDEX {index}, ADD COLUMN {column} VARCHAR(255) "
            f"GENERATED ALWAYS AS (CASE WHEN status = '{status}' THEN region END) STORED, "
            f"ADD UNIQUE INDEX {index} ({column})"
        )
    for table, column, nullable in TIMES:
        op.alter_column(
            table, column, type_=mysql.DATETIME(fsp=6), existing_type=sa.DateTime(),
            existing_nullable=nullable,
        )


def downgrade():
    if not _mysql():
        return
    for table, column, nullable in TIMES:
        op.alter_column(
            table, column, type_=sa.DateTime(), existing_type=mysql.DATETIME(fsp=6),
            existing_nullable=nullable,
        )
    # The indexes keep their names for the downgrades of 0003 and 0001, but not their
    # uniqueness on ``region`` alone: that would refuse the table's own history.
    for column, _status, index in SLOTS:
        op.execute(f"ALTER TABLE task DROP INDEX {index}, DROP COLUMN {column}")
        op.create_index(index, "task", ["region"])
