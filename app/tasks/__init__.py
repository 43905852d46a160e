"""Background syncs: the bounded worker pool, the task leases and the sweep of dead tasks.

A task is a lease (D23, BEHAVIOUR.md 10.7): the process running it is named in the row
(``worker``, unique per process start) and renews a heartbeat taken from the database's
clock. Every write of the runner is conditional on still holding the lease
(app/leases.py); when a renewal matches nothing, the task was taken from this process:
its sync is cancelled at once and the row is never written again. Every process sweeps
dead ``syncing`` tasks and expired ``queued`` ones in its lease loop, and claims queued
tasks of free regions.

Modules: ``runner`` (the pool, ownership, running a sync and its final write),
``lease_loop`` (renew, sweep, claim, progress), ``creation`` (``start_sync`` and its
races), ``cancelling``, ``groups`` (fan-out groups), ``service`` (start-up and upkeep).
The names below are re-exported so that callers import them from ``app.tasks``.
"""

from app.leases import INTERRUPTED
from app.tasks.cancelling import CANCELLED, cancel, cancel_queued, fail_if_dead, request_cancel
from app.tasks.creation import CREATE_ATTEMPTS, new_task, start_sync
from app.tasks.live import LiveTask
from app.tasks.runner import (
    EXTENSION,
    STOPPED,
    TASK_RUN,
    TaskRunner,
    run_is_dead,
    runner,
    runner_of,
)
from app.tasks.service import (
    check_lease_timing,
    init_tasks,
    lease_timing_problem,
    prune_finished,
    schema_at_head,
    start_service,
)

__all__ = [
    "CANCELLED",
    "CREATE_ATTEMPTS",
    "EXTENSION",
    "INTERRUPTED",
    "STOPPED",
    "TASK_RUN",
    "LiveTask",
    "TaskRunner",
    "cancel",
    "check_lease_timing",
    "cancel_queued",
    "fail_if_dead",
    "init_tasks",
    "lease_timing_problem",
    "new_task",
    "prune_finished",
    "request_cancel",
    "run_is_dead",
    "runner",
    "runner_of",
    "schema_at_head",
    "start_service",
    "start_sync",
]
