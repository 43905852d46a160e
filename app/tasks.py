"""Background syncs: the bounded worker pool, the task leases and the sweep of dead tasks.

A task is a lease (D23, BEHAVIOUR.md 10.7): the process running it is named in the row
(``worker``, unique per process start) and renews a heartbeat taken from the database's
clock. Every write of the runner is conditional on still holding the lease
(app/leases.py); when a renewal matches nothing, the task was taken from this process:
its sync is cancelled at once and the row is never written again. Every process sweeps
dead ``syncing`` tasks and expired ``queued`` ones in its lease loop, and claims queued
tasks of free regions.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from app import leases
from app.errors import ApiError
from app.leases import INTERRUPTED
from app.metrics import record_progress, sync_ended
from app.models import FAILED, QUEUED, SYNCED, SYNCING, Task, db, db_now
from app.regions import core
from app.workers import Worker, new_worker, pid_alive, worker_pid
from glancesync.leftovers import Runs, cli_run_dead
from glancesync.progress import UploadTracker

log = logging.getLogger("GlanceSync-API")
EXTENSION = "glancesync.tasks"
CREATE_ATTEMPTS = 20
CANCELLED = "cancelled"
TASK_RUN = "task:"  # a task's run id in the upload marker (D20): task:<task id>
STOPPED = "Sync interrupted: the service stopped"
__all__ = ["INTERRUPTED", "TaskRunner", "recover", "runner", "start_service", "start_sync"]


@dataclass
class LiveTask:
    """What the thread of a running sync shares with the lease and progress threads."""

    region: str
    lease_seconds: float
    tracker: UploadTracker = field(default_factory=UploadTracker)
    cancel: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    claimed: bool = False  # the lease is taken (reserved tasks are not yet claimed)
    stop_message: str | None = None  # set when the service stops: the task's final message
    written: int = -1  # tracker version last stored
    renewed: float = field(default_factory=time.monotonic)  # last renewal that held

    def expired(self) -> bool:
        """No renewal for a whole ``dead_after`` (e.g. the process was frozen): others
        may already have failed the task, so it is treated as lost without asking."""
        return time.monotonic() - self.renewed > self.lease_seconds

    def should_stop(self) -> bool:
        """The core's ``should_cancel``: a cancel request, or a lease this process lost."""
        return self.cancel.is_set() or self.lost.is_set() or self.expired()


class TaskRunner:
    """Runs syncs in a bounded thread pool and holds the leases of the tasks it runs."""

    # Tasks run by any runner of this process (tests build several apps in one process):
    # a task of this pid and scope that is not in this set has no thread working on it.
    # A count, as two runners may reserve the same task for a moment (racing claims).
    _process_owned: Counter[str] = Counter()
    _process_lock = threading.Lock()

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
        self.queue_timeout = queue_timeout
        self.final_write_attempts = final_write_attempts
        self._worker: Worker | None = None
        self._live: dict[str, LiveTask] = {}
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
        """This runner's identity, made anew in a forked child (its pid changed)."""
        if self._worker is None or self._worker.pid != os.getpid():
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
        live = LiveTask(region, self.dead_after.total_seconds())
        with self._process_lock:
            if task_id in self._live:
                return None
            self._process_owned[task_id] += 1
            self._live[task_id] = live
        self.start()
        return live

    def release(self, task_id: str) -> None:
        with self._process_lock:
            if self._live.pop(task_id, None) is not None:
                self._process_owned[task_id] -= 1
                if self._process_owned[task_id] <= 0:
                    del self._process_owned[task_id]

    def owned(self) -> list[str]:
        """The tasks of this runner (the ones it holds the lease of)."""
        with self._process_lock:
            return sorted(self._live)

    def live(self, task_id: str) -> LiveTask | None:
        with self._process_lock:
            return self._live.get(task_id)

    @classmethod
    def owned_by_process(cls, task_id: str) -> bool:
        with cls._process_lock:
            return cls._process_owned[task_id] > 0

    def is_dead(self, task: Task, now: datetime) -> bool:
        """Stale heartbeat (database clock), or a worker of this boot and pid namespace
        whose process no longer runs it. A pid seen from elsewhere means nothing."""
        if now - task.heartbeat > self.dead_after:
            return True
        if not task.worker_scope or task.worker_scope != self.worker.scope:
            return False
        pid = worker_pid(task.worker)
        if pid is None:
            return False
        if pid == os.getpid():
            return not self.owned_by_process(task.task_id)
        return not pid_alive(pid)

    # -- claiming and running ------------------------------------------------------------
    def try_claim(self, task_id: str, region: str, launch: bool = True) -> bool:
        """Claim a queued task for this runner and start its sync (unless ``launch`` is
        False: the caller runs it); False when another runner got it or the region is busy."""
        if self._stopping.is_set() or self.reserve(task_id, region) is None:
            return False
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
            live.renewed = time.monotonic()
            live.claimed = True
        if launch:
            self.launch(task_id, region)
        return True

    def launch(self, task_id: str, region: str) -> None:
        """Queue the sync in the pool; the answer to the POST does not wait for it."""
        self._pool.submit(self._run, task_id, region)

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        """Queue another kind of sync job (a fan-out group, ``app.fanout_tasks``)."""
        self._pool.submit(job, *args)

    def _run(self, task_id: str, region: str) -> None:
        live = self.live(task_id) or LiveTask(region, self.dead_after.total_seconds())
        started = time.monotonic()
        with self.app.app_context():
            try:
                status, message, images = self._sync(task_id, region, live)
            except Exception as exc:  # every failure must end the task
                log.exception("Sync task %s of region %s failed", task_id, region)
                status, message, images = FAILED, str(exc) or type(exc).__name__, []
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
                    sync_ended(task_id, live.region, status, elapsed, snapshot, message, images)
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
        ).to_dict()
        if result["failed"]:
            return FAILED, result["error"], result["images"]
        return SYNCED, result["summary"], result["images"]

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

    # -- the lease loop ------------------------------------------------------------------
    def start(self) -> None:
        """Start the lease and progress threads (again in a forked child)."""
        with self._lock:
            if self._stop.is_set():
                return
            if all(thread.is_alive() for thread in self._threads) and self._threads:
                return
            self._threads = [
                self._thread(self._lease_loop, self.heartbeat_interval, "task-lease"),
                self._thread(self.report, self.progress_interval, "task-progress"),
            ]

    def _thread(self, step, interval: float, name: str) -> threading.Thread:
        thread = threading.Thread(target=self._loop, args=(step, interval), name=name)
        thread.daemon = True
        thread.start()
        return thread

    def _loop(self, step, interval: float) -> None:
        while not self._stop.wait(max(0.01, interval)):
            try:
                step()
            except Exception:  # a database hiccup must not stop later rounds
                log.exception("Task loop %s failed", threading.current_thread().name)

    def _lease_loop(self) -> None:
        """Renew, then sweep and claim: each on its own, so one failing spares the rest."""
        for step in (self.beat, self.sweep, self.claim_queued):
            try:
                with self.app.app_context():
                    step()
                    db.session.remove()
            except Exception:
                log.exception("Task lease step %s failed", step.__name__)

    def beat(self) -> None:
        """Renew the lease of every task of this runner; a lost one is cancelled at once."""
        for task_id in self.owned():
            live = self.live(task_id)
            if live is None or not live.claimed or live.lost.is_set():
                continue
            if live.expired():
                self.lose(task_id, live, "no renewal within DEAD_AFTER")
            elif leases.heartbeat(task_id, self.worker.name):
                live.renewed = time.monotonic()
            else:
                self.lose(task_id, live, "another process failed or took it")

    def lose(self, task_id: str, live: LiveTask, why: str) -> None:
        live.lost.set()
        live.cancel.set()
        log.warning(
            "Task %s of region %s: lease lost (%s); its sync stops and this process "
            "never writes the task again",
            task_id,
            live.region,
            why,
        )

    def sweep(self, region: str | None = None) -> int:
        """Fail the dead syncing tasks and the expired queued ones; returns how many
        syncing tasks were failed."""
        now = db_now(db.session)
        query = select(Task).where(Task.status == SYNCING)
        if region is not None:
            query = query.where(Task.region == region)
        failed = 0
        for task in db.session.scalars(query).all():
            if self.is_dead(task, now) and leases.fail_syncing(task, now):
                failed += 1
                log.warning(
                    "Task %s of region %s marked failed: %s", task.task_id, task.region, INTERRUPTED
                )
        for task in leases.expire_queued(now, self.queue_timeout, region):
            log.warning("Queued task %s of region %s expired", task.task_id, task.region)
        return failed

    def claim_queued(self) -> None:
        """Claim the queued tasks of free regions, as far as the pool has room."""
        room = self.max_workers - len(self.owned())
        if room <= 0 or self._stop.is_set() or self._stopping.is_set() or self.dispatch:
            return
        for task_id, region in leases.claimable_tasks(room):
            self.try_claim(task_id, region)

    # -- progress and cancel -------------------------------------------------------------
    def cancel_here(self, task_id: str) -> None:
        """Raise the flag now when this process runs the task (no wait for the poll)."""
        live = self.live(task_id)
        if live is not None:
            live.cancel.set()

    def report(self) -> None:
        """Store the changed progress of the running tasks (one small UPDATE each, at most
        once per interval however many chunks were sent), then raise the cancel flag of
        those whose cancel was requested, possibly through another server process."""
        with self._process_lock:
            live = {k: v for k, v in self._live.items() if not v.lost.is_set()}
        if not live:
            return
        with self.app.app_context():
            for task_id, entry in live.items():
                version = entry.tracker.version
                if version != entry.written:
                    snapshot = entry.tracker.snapshot()
                    leases.store_progress(task_id, self.worker.name, snapshot)
                    record_progress(task_id, snapshot)
                    entry.written = version
            for task_id in leases.cancel_requested(list(live)):
                live[task_id].cancel.set()
            db.session.commit()
            db.session.remove()

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


def cancel(task: Task) -> bool:
    """Cancel a task for any caller (the API, the web page): a queued task ends at once, a
    syncing one is asked to stop within a chunk (its worker deletes the half image). False
    when it already ended, or its worker died (then it is marked failed, as a POST would)."""
    if task.status == QUEUED and cancel_queued(task):
        return True
    if task.status == SYNCING:
        fail_if_dead(task)
    return request_cancel(task)


def runner() -> TaskRunner:
    return current_app.extensions[EXTENSION]


def runner_of(app: Flask) -> TaskRunner:
    return app.extensions[EXTENSION]


def run_is_dead(run_id: str) -> bool:
    """Whether the run that marked an upload is over (D20), so its image is a leftover.

    ``task:<id>``: a task of this database that ended, or whose worker is dead; a task
    this database does not know may belong to another service: not known dead. Other
    ids: the core's test (a CLI run of this host whose process is gone).
    """
    if not run_id.startswith(TASK_RUN):
        return cli_run_dead(run_id)
    task_id = run_id.removeprefix(TASK_RUN)
    task = db.session.scalars(select(Task).where(Task.task_id == task_id)).first()
    if task is None:
        return False
    return task.status != SYNCING or runner().is_dead(task, db_now(db.session))


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


def log_failed(task: Task) -> None:
    log.warning("Task %s of region %s marked failed: %s", task.task_id, task.region, INTERRUPTED)


def recover(region: str | None = None) -> int:
    """Fail the dead syncing tasks (of one region, or all); returns how many."""
    return runner().sweep(region)


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
      fan-out group, ``app.fanout_tasks``); with a Celery broker it is not published.

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


def prune_finished(days: float) -> int:
    """Delete the synced/failed tasks not updated for ``days`` days (database clock);
    queued and syncing tasks are never touched. Returns how many went."""
    cutoff = db_now(db.session) - timedelta(days=days)
    result = db.session.execute(
        delete(Task).where(Task.status.in_((SYNCED, FAILED)), Task.updated < cutoff)
    )
    db.session.commit()
    return result.rowcount


def schema_at_head(app: Flask) -> bool:
    """True when the database is at the head revision of migrations/ (``db upgrade`` done)."""
    config = Config()
    config.set_main_option("script_location", app.config["MIGRATIONS_DIR"])
    heads = set(ScriptDirectory.from_config(config).get_heads())
    with db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current == heads


def start_service(app: Flask) -> bool:
    """Run once by each serving process (runserver, every gunicorn worker), never by
    ``db upgrade`` or the other commands: recover dead tasks and start the lease loop,
    only on a database at the migration head. False when it did not start."""
    with app.app_context():
        try:
            if not schema_at_head(app):
                log.error(
                    "The database is not at the migration head: run `manage.py db upgrade`; "
                    "no task recovery and no lease loop until then"
                )
                return False
            count = runner().sweep()
        except SQLAlchemyError:
            log.exception("Recovery of interrupted tasks failed")
            db.session.rollback()
            return False
        finally:
            db.session.remove()
    if count:
        log.warning("%d interrupted task(s) marked failed at start", count)
    app.extensions[EXTENSION].start()
    return True


def init_tasks(app: Flask) -> TaskRunner:
    runner_ = TaskRunner(
        app,
        app.config["SYNC_WORKERS"],
        app.config["HEARTBEAT_INTERVAL"],
        app.config["DEAD_AFTER"],
        app.config.get("PROGRESS_INTERVAL", 1.0),
        app.config.get("QUEUE_TIMEOUT", 3600.0),
        app.config.get("FINAL_WRITE_ATTEMPTS", 5),
    )
    app.extensions[EXTENSION] = runner_
    return runner_
