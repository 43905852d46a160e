"""The task row as a lease (D23): every write of a runner is conditional on holding it.

A runner writes a task only ``WHERE task_id = ? AND worker = <itself> AND status =
'syncing'``: once another process has failed the task (it judged the runner dead) or
taken the region over, the runner's writes match nothing, which is how it learns that
it lost the task, and it can never overwrite the row of the process that took over.
Every time compared here comes from the database's clock (``db_now``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app.models import FAILED, QUEUED, SYNCED, SYNCING, Task, db, db_now
from app.workers import Worker

INTERRUPTED = "Sync interrupted: the server process running it stopped"
QUEUE_EXPIRED = "Not started: no server claimed this queued task within {seconds:g} s"


def _held(task_id: str, worker: str):
    return (Task.task_id == task_id, Task.worker == worker, Task.status == SYNCING)


def claim(task_id: str, worker: Worker) -> bool:
    """``queued`` -> ``syncing`` with the lease of ``worker``; False when another runner
    claimed it first or the region already has a syncing task (the unique index)."""
    now = db_now(db.session)
    try:
        result = db.session.execute(
            update(Task)
            .where(Task.task_id == task_id, Task.status == QUEUED)
            .values(
                status=SYNCING,
                worker=worker.name,
                worker_scope=worker.scope,
                heartbeat=now,
                updated=now,
            )
        )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return bool(result.rowcount)


def withdraw(task_id: str) -> bool:
    """Delete a task still queued (its creator found the region busy after all)."""
    result = db.session.execute(delete(Task).where(Task.task_id == task_id, Task.status == QUEUED))
    db.session.commit()
    return bool(result.rowcount)


def heartbeat(task_id: str, worker: str) -> bool:
    """Renew the lease; False when it is lost (the task is no longer ours)."""
    now = db_now(db.session)
    result = db.session.execute(update(Task).where(*_held(task_id, worker)).values(heartbeat=now))
    db.session.commit()
    return bool(result.rowcount)


def finish(
    task_id: str,
    worker: str,
    status: str,
    message: str | None,
    images: list[dict],
    progress: dict | None,
) -> bool:
    """End the task if the lease is still held; its final progress is kept for the record."""
    now = db_now(db.session)
    values = {"progress": json.dumps(progress)} if progress is not None else {}
    result = db.session.execute(
        update(Task)
        .where(*_held(task_id, worker))
        .values(
            status=status,
            message=message,
            images=json.dumps(images),
            updated=now,
            heartbeat=now,
            **values,
        )
    )
    db.session.commit()
    return bool(result.rowcount)


def store_progress(task_id: str, worker: str, progress: dict) -> bool:
    """Only while the lease is held: a late write never replaces the final progress."""
    result = db.session.execute(
        update(Task).where(*_held(task_id, worker)).values(progress=json.dumps(progress))
    )
    return bool(result.rowcount)


def cancel_requested(task_ids: list[str]) -> list[str]:
    return list(
        db.session.scalars(
            select(Task.task_id).where(Task.task_id.in_(task_ids), Task.cancel_requested)
        )
    )


def fail_syncing(task: Task, now: datetime, message: str = INTERRUPTED) -> bool:
    """Fail a syncing task judged dead; the heartbeat condition spares one that just beat."""
    result = db.session.execute(
        update(Task)
        .where(Task.id == task.id, Task.status == SYNCING, Task.heartbeat == task.heartbeat)
        .values(status=FAILED, message=message, updated=now)
    )
    db.session.commit()
    return bool(result.rowcount)


def expire_queued(now: datetime, timeout: float, region: str | None = None) -> list[Task]:
    """Fail the queued tasks nobody claimed within ``timeout`` seconds of their region
    becoming free; returns them.

    The wait counts from the later of the task's creation and the end of the region's
    last task, and not at all while the region syncs: a follow-up queued behind a sync
    longer than the timeout is not failed, it runs once that sync ends."""
    cutoff = now - timedelta(seconds=timeout)
    other = aliased(Task)
    syncing = select(Task.region).where(Task.status == SYNCING)
    ended_lately = (
        select(other.id)
        .where(
            other.region == Task.region,
            other.status.in_((SYNCED, FAILED)),
            other.updated >= cutoff,
        )
        .exists()
    )
    query = select(Task).where(
        Task.status == QUEUED,
        Task.created < cutoff,
        Task.region.not_in(syncing),
        ~ended_lately,
    )
    if region is not None:
        query = query.where(Task.region == region)
    expired = []
    for task in db.session.scalars(query).all():
        result = db.session.execute(
            update(Task)
            .where(Task.id == task.id, Task.status == QUEUED)
            .values(status=FAILED, message=QUEUE_EXPIRED.format(seconds=timeout), updated=now)
        )
        if result.rowcount:
            expired.append(task)
    db.session.commit()
    return expired


def seen_queued(task_id: str) -> bool:
    """A worker saw the task's message and put it back (busy region, full pool): the
    message is alive, so the lease loops need not republish it (``unheard``)."""
    now = db_now(db.session)
    result = db.session.execute(
        update(Task).where(Task.task_id == task_id, Task.status == QUEUED).values(updated=now)
    )
    db.session.commit()
    return bool(result.rowcount)


def unheard(now: datetime, age: float, limit: int) -> list[Task]:
    """Queued tasks of free regions that no worker claimed or saw within ``age`` seconds:
    their broker message may be lost (a crash between commit and publish, a purged queue)."""
    syncing = select(Task.region).where(Task.status == SYNCING)
    return list(
        db.session.scalars(
            select(Task)
            .where(
                Task.status == QUEUED,
                Task.updated < now - timedelta(seconds=age),
                Task.region.not_in(syncing),
            )
            .order_by(Task.created)
            .limit(limit)
        )
    )


def mark_republished(task: Task, now: datetime) -> bool:
    """Take the republishing of a queued task: one process wins per round (the
    ``updated`` condition), so processes do not each add a message."""
    result = db.session.execute(
        update(Task)
        .where(Task.id == task.id, Task.status == QUEUED, Task.updated == task.updated)
        .values(updated=now)
    )
    db.session.commit()
    return bool(result.rowcount)


def task_of(region: str, status: str) -> Task | None:
    """The region's task in ``status`` (there is at most one queued and one syncing)."""
    db.session.expire_all()
    return db.session.scalars(
        select(Task).where(Task.region == region, Task.status == status)
    ).first()


def claimable_tasks(limit: int) -> list[tuple[str, str]]:
    """``(task id, region)`` of queued tasks of regions with no syncing task, oldest first."""
    syncing = select(Task.region).where(Task.status == SYNCING)
    rows = db.session.execute(
        select(Task.task_id, Task.region)
        .where(Task.status == QUEUED, Task.region.not_in(syncing))
        .order_by(Task.created)
        .limit(limit)
    )
    return [(task_id, region) for task_id, region in rows]


def task_by_id(task_id: str) -> Task | None:
    db.session.expire_all()
    return db.session.scalars(select(Task).where(Task.task_id == task_id)).first()
