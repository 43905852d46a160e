"""Creating a region's task: the one entry point for every task creator, and its races.

The partial unique indexes (one queued and one syncing task per region) decide races
between processes: a loser's insert fails and it answers with the winner's task.
"""

from __future__ import annotations

import math
import uuid

from sqlalchemy.exc import IntegrityError

from app import leases
from app.errors import ApiError
from app.models import QUEUED, SYNCING, Task, db, db_now
from app.tasks.runner import runner

CREATE_ATTEMPTS = 20


def start_sync(
    region: str, user: str, *, follow_up: bool = False, launch: bool = True
) -> tuple[Task, bool]:
    """Create (or find) the task of a region: the one entry point for every task creator.

    REST POSTs, fan-out groups, schedulers and notification listeners all come here;
    ``user`` is stored as the task's user (the token's user name, or an origin string
    such as ``scheduler``). Returns the task and True when it was created now.

    * a queued task of the region is returned as it is (claimed here if the region is
      free);
    * a live syncing task is returned, unless ``follow_up``: then a queued task is made
      to run after it (an image changed during the running sync);
    * otherwise a new task is stored ``queued`` and claimed at once by this process
      (``queued`` -> ``syncing``), whose pool runs the sync.
    * with ``launch=False`` a task claimed here is not started: the caller runs it (a
      fan-out group, ``app.tasks.groups``); with a Celery broker it is not published.

    The partial unique indexes decide races: a loser's insert fails and it answers with
    the winner's task.
    """
    tasks = runner()
    for _ in range(CREATE_ATTEMPTS):
        tasks.sweep(region)
        syncing = leases.task_of(region, SYNCING)
        queued = leases.task_of(region, QUEUED)
        if syncing is not None and not follow_up:
            return syncing, False
        if queued is not None:
            if syncing is not None or tasks.dispatch or tasks.try_claim(queued.task_id, region):
                current = leases.task_by_id(queued.task_id)
                if current is not None:
                    return current, False
            if tasks.stopping:  # it stays queued for another instance (lease_loop)
                raise stopping_error(tasks.heartbeat_interval)
            continue  # claimed elsewhere, withdrawn or the region got busy: look again
        task = new_task(region, user)
        db.session.add(task)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            continue
        if tasks.dispatch:
            busy = syncing is None and leases.task_of(region, SYNCING) is not None
            if busy and leases.withdraw(task.task_id):
                continue  # a sync started meanwhile: answer with it, as below
            if launch:  # else the caller publishes it (a fan-out group)
                try:
                    tasks.dispatch(task.task_id, region)  # a worker claims it (app/broker.py)
                except ApiError:
                    leases.withdraw(task.task_id)
                    raise
            return leases.task_by_id(task.task_id) or task, True
        # Another request's task may have started syncing between our read and our
        # insert: then ours is withdrawn (unless another runner claimed it meanwhile).
        busy = syncing is None and not tasks.try_claim(task.task_id, region, launch=launch)
        if busy and not tasks.stopping and leases.withdraw(task.task_id):
            continue  # (a stopping process leaves it queued for another one)
        return leases.task_by_id(task.task_id) or task, True
    raise RuntimeError(f"could not create or find the task of region {region}")


def stopping_error(interval: float) -> ApiError:
    """This process is stopping and claims nothing: the client retries, and meanwhile
    another instance's lease loop claims the queued task within one interval."""
    return ApiError(
        503,
        "This server is stopping; the region's queued task is left to another instance",
        {"Retry-After": str(max(1, math.ceil(interval)))},
    )


def new_task(region: str, user: str) -> Task:
    now = db_now(db.session)
    return Task(
        task_id=str(uuid.uuid4()),
        region=region,
        status=QUEUED,
        user_name=user,
        created=now,
        updated=now,
        message=None,
        images="[]",
        worker="",
        heartbeat=now,
    )
