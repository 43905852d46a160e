"""Task rows as other (possibly dead) workers leave them, and reading them back."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from datetime import timedelta

from sqlalchemy import select

from app.models import SYNCING, Task, db, utcnow


def add_task(
    app, region: str, worker: str, age: float, status: str = SYNCING, scope: str = ""
) -> str:
    """Store a task as another (possibly dead) worker would have left it."""
    task_id = str(uuid.uuid4())
    beat = utcnow() - timedelta(seconds=age)
    with app.app_context():
        db.session.add(
            Task(
                task_id=task_id,
                region=region,
                status=status,
                user_name="old",
                created=beat,
                updated=beat,
                message=None,
                images="[]",
                worker=worker,
                worker_scope=scope,
                heartbeat=beat,
            )
        )
        db.session.commit()
        db.session.remove()
    return task_id


def stored(app, task_id: str) -> Task:
    with app.app_context():
        task = db.session.scalars(select(Task).where(Task.task_id == task_id)).one()
        db.session.expunge(task)
        db.session.remove()
        return task


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


HOST = socket.gethostname()
