"""The stored sync tasks (BEHAVIOUR.md 10.7, D23).

The rules "one syncing task per region" and "one queued task per region" live in the
database, so they hold across server processes, hosts and racing requests without any
lock of ours: partial unique indexes on SQLite and PostgreSQL; on MySQL/MariaDB, which
have none, a unique index on a generated column that holds the region only while the
task is queued (or syncing) and NULL otherwise (a unique index admits many NULLs).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DDL, Boolean, DateTime, Index, Integer, String, Text, event, false, text
from sqlalchemy.dialects.mysql import DATETIME as MYSQL_DATETIME
from sqlalchemy.orm import Mapped, Session, mapped_column

db = SQLAlchemy()

QUEUED, SYNCING, SYNCED, FAILED = "queued", "syncing", "synced", "failed"
ONE_SYNCING_INDEX = "ix_task_one_syncing_per_region"
ONE_QUEUED_INDEX = "ix_task_one_queued_per_region"
_SYNCING_ONLY = text("status = 'syncing'")
_QUEUED_ONLY = text("status = 'queued'")
# SQLAlchemy stores SQLite datetimes as this text; ``%f`` of SQLite is ``SS.SSS``.
_SQLITE_NOW = "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"
# The statement's clock, not the transaction's start (``now()``): a transaction open for a
# while must not stamp a heartbeat in the past (as app/schedule.py does).
_POSTGRES_NOW = "SELECT timezone('utc', clock_timestamp())"
MYSQL_NOW = "SELECT UTC_TIMESTAMP(6)"
MYSQL_DIALECTS = ("mysql", "mariadb")
PARTIAL_INDEX_DIALECTS = ("sqlite", "postgresql")
# MySQL's DATETIME keeps whole seconds: a heartbeat written and then compared for
# equality must keep its microseconds, as it does on SQLite and PostgreSQL.
LeaseTime = DateTime().with_variant(MYSQL_DATETIME(fsp=6), *MYSQL_DIALECTS)
# The MySQL/MariaDB form of the per-region rules: (generated column, status, index).
MYSQL_REGION_SLOTS = (
    ("syncing_region", SYNCING, ONE_SYNCING_INDEX),
    ("queued_region", QUEUED, ONE_QUEUED_INDEX),
)


def mysql_slot_column(column: str, status: str) -> str:
    """DDL of a generated column: the region while the task has ``status``, else NULL."""
    return (
        f"ADD COLUMN {column} VARCHAR(255) GENERATED ALWAYS AS "
        f"(CASE WHEN status = '{status}' THEN region END) STORED"
    )


def utcnow() -> datetime:
    """Naive UTC of this process's clock: only for what no other process compares."""
    return datetime.now(UTC).replace(tzinfo=None)


def db_now(session: Session) -> datetime:
    """The database's clock, naive UTC whatever the server's or the session's time zone.

    Every time a lease depends on (heartbeat, staleness, queue age) comes from here, so
    processes with skewed clocks on several hosts agree on what "60 s old" means.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        value = session.execute(text(_SQLITE_NOW)).scalar_one()
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f")
    if dialect in MYSQL_DIALECTS:
        return session.execute(text(MYSQL_NOW)).scalar_one()
    value = session.execute(text(_POSTGRES_NOW)).scalar_one()
    return value.replace(tzinfo=None)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Task(db.Model):
    __tablename__ = "task"
    __table_args__ = (
        Index(
            ONE_SYNCING_INDEX,
            "region",
            unique=True,
            sqlite_where=_SYNCING_ONLY,
            postgresql_where=_SYNCING_ONLY,
        ).ddl_if(dialect=PARTIAL_INDEX_DIALECTS),
        Index(
            ONE_QUEUED_INDEX,
            "region",
            unique=True,
            sqlite_where=_QUEUED_ONLY,
            postgresql_where=_QUEUED_ONLY,
        ).ddl_if(dialect=PARTIAL_INDEX_DIALECTS),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    region: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    user_name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    created: Mapped[datetime] = mapped_column(LeaseTime, nullable=False)
    updated: Mapped[datetime] = mapped_column(LeaseTime, nullable=False)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    images: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    # The lease holder: ``host:pid:nonce``, unique per process start (D23).
    worker: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    # ``<boot id>/<pid namespace>`` of the worker: its pid means something only there.
    worker_scope: Mapped[str] = mapped_column(
        String(128), nullable=False, default="", server_default=""
    )
    heartbeat: Mapped[datetime] = mapped_column(LeaseTime, nullable=False)
    # Upload progress (JSON text of the ``progress`` member), written by the worker running
    # the sync at most once per PROGRESS_INTERVAL; the last one is kept when the task ends.
    progress: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Set by POST .../cancel in any server process; the running worker polls it.
    cancel_requested: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )

    def to_dict(self, with_images: bool = True) -> dict:
        """The task representation of 10.7; the list route leaves out ``images`` and the
        progress members, which grow with the number of uploads."""
        body = {
            "taskId": self.task_id,
            "region": self.region,
            "status": self.status,
            "user": self.user_name,
            "created": iso(self.created),
            "updated": iso(self.updated),
            "message": self.message,
        }
        if with_images:
            body["images"] = json.loads(self.images or "[]")
            body["progress"] = self.progress_dict()
            body["cancelRequested"] = bool(self.cancel_requested)
        return body

    def progress_dict(self) -> dict | None:
        """The stored progress; an empty one for a syncing task that stored none yet, None
        for a finished task that never had any (e.g. one from before migration 0002)."""
        if self.progress:
            return json.loads(self.progress)
        if self.status in (QUEUED, SYNCING):
            return {"images": [], "bytesDone": 0, "bytesTotal": 0}
        return None

    def __repr__(self) -> str:
        return f"<Task {self.task_id} {self.region} {self.status}>"


# The schema is made by the migrations (0008 for these); the same DDL here keeps the model
# an exact description of it on MySQL/MariaDB (e.g. for ``db migrate``'s comparison).
for _column, _status, _index in MYSQL_REGION_SLOTS:
    event.listen(
        Task.__table__,
        "after_create",
        DDL(
            f"ALTER TABLE task {mysql_slot_column(_column, _status)}, "
            f"ADD UNIQUE INDEX {_index} ({_column})"
        ).execute_if(dialect=MYSQL_DIALECTS),
    )
