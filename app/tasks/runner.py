"""The task runner: the bounded worker pool, the tasks it owns, and running their syncs.

The process running a task is named in the row (``worker``, unique per process start).
Every write of the runner is conditional on still holding the lease (app/leases.py), and
its final write is retried on database errors; a task whose lease was lost is left to
the sweep of another process (``lease_loop``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from app import leases
from app.errors import ApiError
from app.logs import log_context
from app.metrics import sync_ended
from app.models import FAILED, SYNCED, SYNCING, Task, db, db_now
from app.regions import core
from app.tasks import live as live_clock
from app.tasks.lease_loop import LeaseLoop
from app.tasks.live import LiveTask
from app.workers import Worker, new_worker, pid_alive, worker_pid
from glancesync.errors import kind_of
from glancesync.leftovers import Runs, cli_run_dead
from glancesync.result import RegionResult

log = logging.getLogger("GlanceSync-API")
EXTENSION = "glancesync.tasks"
TASK_RUN = "task:"  # a task's run id in the upload marker (reference 6.9): task:<task id>
STOPPED = "Sync interrupted: the service stopped"


class TaskRunner(LeaseLoop):
    """Runs syncs in a bounded thread pool and holds the leases of the tasks it runs."""

    def __init__(
        self,
        app: Flask,
        max_workers: int,
        heartbeat_interval: float,
        dead_after: float,
        progress_interval: float = 1.0,
        queue_timeout: float = 3600.0,
        final_write_attempts: int = 5,
    ) -> None:
        self.app = app
        self.max_workers = max_workers
        self.heartbeat_interval = heartbeat_interval
        self.progress_interval = progress_interval
        self.dead_after = timedelta(seconds=dead_after)
        # a runner stops its own sync this long after its last renewal, before any other
        # process may take the task over (app.tasks.service.lease_timing_problem)
        self.own_lease = max(0.0, dead_after - 2 * heartbeat_interval)
        self.queue_timeout = queue_timeout
        self.republish_after = heartbeat_interval  # raised by a broker (app/broker.py)
        self.final_write_attempts = final_write_attempts
        # made here, before any thread can ask: a lazy identity made by two threads at once
        # gave the row one name and the runner another (its next heartbeat then failed)
        self._worker_lock = threading.Lock()
        self._worker: Worker = new_worker()
        self._live: dict[str, LiveTask] = {}  # the tasks this runner reserved or runs
        self._live_lock = threading.Lock()
        # tasks claimed with launch=False, by the thread that claimed them: that caller
        # (a fan-out group) runs exactly these, and ends them if it fails before
        self._unlaunched: dict[str, tuple[str, int]] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sync")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stopping = threading.Event()  # no new claims (the service is stopping)
        self._threads: list[threading.Thread] = []
        # With a broker (app/broker.py): publishes a new task instead of claiming it here,
        # and no process claims queued tasks in its lease loop (a worker's message does).
        self.dispatch: Callable[[str, str], None] | None = None
        # with a broker: publish a fan-out group's queued tasks [(task id, region), ...]
        self.dispatch_group: Callable[[list[tuple[str, str]]], None] | None = None

    @property
    def worker(self) -> Worker:
        """This runner's identity, made anew in a forked child (its pid changed), once."""
        if self._worker.pid != os.getpid():
            with self._worker_lock:
                if self._worker.pid != os.getpid():
                    self._worker = new_worker()
        return self._worker

    @property
    def stopping(self) -> bool:
        """The service is stopping: this runner claims nothing more."""
        return self._stopping.is_set()

    # -- ownership -----------------------------------------------------------------------
    def reserve(self, task_id: str, region: str) -> LiveTask | None:
        """Own a task before claiming it, so this process never takes it for dead;
        None when a thread of this runner already claims or runs it."""
        live = LiveTask(region, self.own_lease)
        with self._live_lock:
            if task_id in self._live:
                return None
            self._live[task_id] = live
        self.start()
        return live

    def release(self, task_id: str) -> None:
        with self._live_lock:
            self._live.pop(task_id, None)
            self._unlaunched.pop(task_id, None)

    def take_claims(self) -> list[tuple[str, str]]:
        """``(task id, region)`` of the tasks this thread claimed with ``launch=False`` and
        has not run yet, handed over once: the caller runs them (or ends them). A task the
        lease loop claimed meanwhile is not among them, so no task runs twice."""
        me = threading.get_ident()
        with self._live_lock:
            mine = [task_id for task_id, (_, ident) in self._unlaunched.items() if ident == me]
            return [(task_id, self._unlaunched.pop(task_id)[0]) for task_id in mine]

    def owned(self) -> list[str]:
        """The tasks of this runner (the ones it holds the lease of)."""
        with self._live_lock:
            return sorted(self._live)

    def live(self, task_id: str) -> LiveTask | None:
        with self._live_lock:
            return self._live.get(task_id)

    def running(self) -> dict[str, LiveTask]:
        """The tasks of this runner whose lease is not lost."""
        with self._live_lock:
            return {k: v for k, v in self._live.items() if not v.lost.is_set()}

    def is_dead(self, task: Task, now: datetime) -> bool:
        """Stale heartbeat (database clock), or a worker of this boot and pid namespace
        whose process no longer runs it. A pid seen from elsewhere means nothing.

        A serving process has one runner, so a task named with this process's pid that
        this runner does not hold (an earlier process that had this pid, or a task this
        runner already let go) has no thread working on it."""
        if now - task.heartbeat > self.dead_after:
            return True
        if not task.worker_scope or task.worker_scope != self.worker.scope:
            return False
        pid = worker_pid(task.worker)
        if pid is None:
            return False
        if pid == os.getpid():
            return self.live(task.task_id) is None
        return not pid_alive(pid)

    def run_is_dead(self, run_id: str) -> bool:
        """``run_is_dead`` from any thread: a fan-out group asks it from the core's own
        threads, which have no application context (its own one, its session removed)."""
        with self.app.app_context():
            try:
                return run_is_dead(run_id)
            finally:
                db.session.remove()

    def cancel_here(self, task_id: str) -> None:
        """Raise the flag now when this process runs the task (no wait for the poll)."""
        live = self.live(task_id)
        if live is not None:
            live.cancel.set()

    # -- claiming and running ------------------------------------------------------------
    def try_claim(self, task_id: str, region: str, launch: bool = True) -> bool:
        """Claim a queued task for this runner and start its sync (unless ``launch`` is
        False: the caller runs it); False when another runner got it or the region is busy."""
        if self._stopping.is_set() or self.reserve(task_id, region) is None:
            return False
        sent = live_clock.monotonic()
        try:
            claimed = leases.claim(task_id, self.worker)
        except Exception:
            self.release(task_id)
            raise
        if not claimed:
            self.release(task_id)
            return False
        live = self.live(task_id)
        if live is not None:
            live.renewed = sent
            live.claimed = True
        if launch:
            self.launch(task_id, region)
        else:
            with self._live_lock:
                self._unlaunched[task_id] = (region, threading.get_ident())
        return True

    def launch(self, task_id: str, region: str) -> None:
        """Queue the sync in the pool; the answer to the POST does not wait for it."""
        self._pool.submit(self._run, task_id, region)

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        """Queue another kind of sync job (a fan-out group, ``app.tasks.groups``)."""
        self._pool.submit(job, *args)

    def _run(self, task_id: str, region: str) -> None:
        live = self.live(task_id) or LiveTask(region, self.own_lease)
        started = time.monotonic()
        with self.app.app_context(), log_context(task_id, region):
            try:
                status, message, images = self._sync(task_id, region, live)
            except Exception as exc:  # every failure must end the task
                log.exception("Sync task %s of region %s failed", task_id, region)
                status, message, images = FAILED, type(exc).__name__, []  # text: the log
                live.error_kinds = [kind_of(exc)]
                live.tracker.fail_unfinished()
        self.end_task(task_id, live, status, message, images, started)

    def end_task(
        self, task_id: str, live: LiveTask, status: str, message, images, started: float
    ) -> None:
        """A claimed task's sync ended (alone, or as a member of a fan-out group): the
        conditional final write, the metrics, and the task leaves this runner."""
        with self.app.app_context():
            try:
                if live.stop_message and status == FAILED:
                    message = live.stop_message
                if self._end(task_id, live, status, message, images):
                    elapsed = time.monotonic() - started
                    snapshot = live.tracker.snapshot()
                    sync_ended(task_id, live.region, status, elapsed, snapshot, live.error_kinds)
            finally:
                self.release(task_id)
                db.session.remove()

    def _sync(self, task_id: str, region: str, live: LiveTask) -> tuple[str, str | None, list]:
        """Run the sync of one task's region with the core; the one place that calls it."""
        try:
            gs = core().glancesync()
        except ApiError as exc:
            return FAILED, exc.description, []
        # the core takes the region's lock file (shared with CLI runs of this host) and
        # marks its uploads with the task id; run_is_dead tells it which marks are stale
        runs = Runs(run_id=f"{TASK_RUN}{task_id}", is_dead=run_is_dead)
        result = gs.sync_region(
            region, progress=live.tracker, should_cancel=live.should_stop, runs=runs
        )
        live.error_kinds = result.error_kinds()
        return outcome(result)

    def _end(self, task_id: str, live: LiveTask, status: str, message, images) -> bool:
        """The final write, only while the lease is held, retried on database errors;
        True when it was written."""
        if live.lost.is_set() or live.expired():
            log.warning("Task %s: lease lost, its row is left to the sweeper", task_id)
            return False
        try:
            held = self._write_final(task_id, status, message, images, live.tracker.snapshot())
        except SQLAlchemyError:
            log.exception(
                "Task %s of region %s: final status %s not written after %d attempts; "
                "it will be marked interrupted",
                task_id,
                live.region,
                status,
                self.final_write_attempts,
            )
            return False
        if not held:
            log.warning("Task %s: lease lost before its final write; row left alone", task_id)
        return held

    def _write_final(self, task_id: str, status: str, message, images, progress) -> bool:
        retrying = Retrying(
            stop=stop_after_attempt(self.final_write_attempts),
            wait=wait_exponential(multiplier=0.5, max=8),
            retry=retry_if_exception_type(SQLAlchemyError),
            before_sleep=lambda state: log.warning(
                "Task %s: final write failed (%s), retrying", task_id, state.outcome.exception()
            ),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                db.session.rollback()
                return leases.finish(task_id, self.worker.name, status, message, images, progress)
        return False  # not reached: the last failure is re-raised

    # -- stopping --------------------------------------------------------------------------
    def stop_syncs(self, message: str = STOPPED, timeout: float | None = None) -> bool:
        """The service is stopping (SIGTERM): claim nothing more, cancel every running
        sync (each deletes its half image and ends ``failed`` with ``message``) and wait
        up to ``timeout`` seconds for them; True when all ended in time."""
        self._stopping.set()
        for task_id in self.owned():
            live = self.live(task_id)
            if live is not None:
                live.stop_message = message
                live.cancel.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.owned():
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def shutdown(self, wait: bool = True) -> None:
        self._stop.set()
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        for task_id in self.owned():
            self.release(task_id)


def outcome(result: RegionResult) -> tuple[str, str | None, list[dict]]:
    """A region's result as its task stores it: status, message and the REST images."""
    body = result.to_dict()
    if body["failed"]:
        return FAILED, body["error"], body["images"]
    return SYNCED, body["summary"], body["images"]


def runner() -> TaskRunner:
    return current_app.extensions[EXTENSION]


def runner_of(app: Flask) -> TaskRunner:
    return app.extensions[EXTENSION]


def run_is_dead(run_id: str) -> bool:
    """Whether the run that marked an upload is over (reference 6.9), so its image is a leftover.

    ``task:<id>``: a task of this database that ended, or whose worker is dead; a task
    this database does not know may belong to another service: not known dead. Other
    ids: the core's test (a CLI run of this host whose process is gone).
    """
    if not run_id.startswith(TASK_RUN):
        return cli_run_dead(run_id)
    task_id = run_id.removeprefix(TASK_RUN)
    try:
        task = db.session.scalars(select(Task).where(Task.task_id == task_id)).first()
        if task is None:
            return False
        return task.status != SYNCING or runner().is_dead(task, db_now(db.session))
    finally:
        # the sync thread asks this while it prepares, then syncs for minutes or hours:
        # its connection must not stay idle in a transaction all that time
        db.session.remove()
