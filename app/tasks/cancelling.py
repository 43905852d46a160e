"""Cancelling a task, for any caller (the API, the web page), in any process."""

from __future__ import annotations

import logging

from sqlalchemy import update

from app import leases
from app.leases import INTERRUPTED
from app.models import FAILED, QUEUED, SYNCING, Task, db, db_now
from app.tasks.runner import runner

log = logging.getLogger("GlanceSync-API")
CANCELLED = "cancelled"


def cancel(task: Task) -> bool:
    """Cancel a task for any caller (the API, the web page): a queued task ends at once, a
    syncing one is asked to stop within a chunk (its worker deletes the half image). False
    when it already ended, or its worker died (then it is marked failed, as a POST would)."""
    if task.status == QUEUED and cancel_queued(task):
        return True
    if task.status == SYNCING:
        fail_if_dead(task)
    return request_cancel(task)


def request_cancel(task: Task) -> bool:
    """Record the cancel of a syncing task (any process may run it); False when it is not
    syncing any more. The runner of this process, if it runs the task, stops it at once."""
    result = db.session.execute(
        update(Task).where(Task.id == task.id, Task.status == SYNCING).values(cancel_requested=True)
    )
    db.session.commit()
    if not result.rowcount:
        return False
    runner().cancel_here(task.task_id)
    return True


def cancel_queued(task: Task) -> bool:
    """End a queued task ``failed`` with ``cancelled`` at once: nothing runs it yet.
    False when it was claimed (or ended) meanwhile."""
    now = db_now(db.session)
    result = db.session.execute(
        update(Task)
        .where(Task.id == task.id, Task.status == QUEUED)
        .values(status=FAILED, message=CANCELLED, cancel_requested=True, updated=now)
    )
    db.session.commit()
    return bool(result.rowcount)


def fail_if_dead(task: Task) -> bool:
    """Mark a dead syncing task failed; the heartbeat condition spares one that just beat."""
    now = db_now(db.session)
    if not runner().is_dead(task, now):
        return False
    failed = leases.fail_syncing(task, now)
    if failed:
        log.warning(
            "Task %s of region %s marked failed: %s", task.task_id, task.region, INTERRUPTED
        )
    return failed
