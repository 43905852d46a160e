"""The stored sync tasks (BEHAVIOUR.md 10.7).

The rule "one syncing task per region" lives in the database as a partial unique index,
so it holds across server processes and racing requests without any lock of ours.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, Index, Integer, String, Text, text
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

    def to_dict(self, with_images: bool = True) -> dict:
        """The task representation of 10.7 (the list route leaves ``images`` out)."""
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
        return body

    def __repr__(self) -> str:
        return f"<Task {self.task_id} {self.region} {self.status}>"
