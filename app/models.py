"""The stored sync tasks (BEHAVIOUR.md 10.7).

The rule "one syncing task per region" lives in the database as a partial unique index,
so it holds across server processes and racing requests without any lock of ours.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

db = SQLAlchemy()

SYNCING, SYNCED, FAILED = "syncing", "synced", "failed"
ONE_SYNCING_INDEX = "ix_task_one_syncing_per_region"
_SYNCING_ONLY = text("status = 'syncing'")


def utcnow() -> datetime:
    """Naive UTC: SQLite keeps no time zone, so every stored time is UTC without one."""
    return datetime.now(UTC).replace(tzinfo=None)


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
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    region: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    user_name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    updated: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    images: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    worker: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    heartbeat: Mapped[datetime] = mapped_column(DateTime, nullable=False)
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
        if self.status == SYNCING:
            return {"images": [], "bytesDone": 0, "bytesTotal": 0}
        return None

    def __repr__(self) -> str:
        return f"<Task {self.task_id} {self.region} {self.status}>"
