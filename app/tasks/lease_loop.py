"""The lease loop of a serving process: renew, sweep, claim, and report progress.

A task is a lease (see the package docstring): the process running it renews a heartbeat
taken from the database's clock; when a renewal matches nothing, the task was taken from
this process: its sync is cancelled at once and the row is never written again. Every
process sweeps dead ``syncing`` tasks and expired ``queued`` ones in its lease loop, and
claims queued tasks of free regions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from flask import Flask
from sqlalchemy import select

from app import leases
from app.errors import ApiError
from app.leases import INTERRUPTED
from app.metrics import record_progress
from app.models import SYNCING, Task, db, db_now
from app.tasks import live as live_clock
from app.tasks.live import LiveTask
from app.workers import Worker

log = logging.getLogger("GlanceSync-API")


class LeaseLoop:
    """The lease and progress threads of a ``TaskRunner`` (mixed into it): this part
    changes with the lease protocol, the runner's own part with how a sync is run."""

    app: Flask
    max_workers: int
    heartbeat_interval: float
    progress_interval: float
    queue_timeout: float
    republish_after: float  # seconds without a worker hearing a queued task's message
    dispatch: Callable[[str, str], None] | None
    _lock: threading.Lock
    _stop: threading.Event
    _stopping: threading.Event
    _threads: list[threading.Thread]
    # provided by TaskRunner (ownership and claiming)
    worker: Worker
    owned: Callable[[], list[str]]
    live: Callable[[str], LiveTask | None]
    running: Callable[[], dict[str, LiveTask]]
    is_dead: Callable[[Task, datetime], bool]
    try_claim: Callable[..., bool]

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
            sent = live_clock.monotonic()  # before the statement: the stored heartbeat is later
            if live.expired():
                self.lose(task_id, live, "no renewal within DEAD_AFTER - 2 x HEARTBEAT_INTERVAL")
            elif leases.heartbeat(task_id, self.worker.name):
                live.renewed = sent
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
        """Claim the queued tasks of free regions, as far as the pool has room; with a
        broker, republish those whose message seems lost instead (workers claim)."""
        if self._stop.is_set() or self._stopping.is_set():
            return
        if self.dispatch:
            self.republish_unheard()
            return
        room = self.max_workers - len(self.owned())
        if room <= 0:
            return
        for task_id, region in leases.claimable_tasks(room):
            self.try_claim(task_id, region)

    def republish_unheard(self, limit: int = 100) -> int:
        """A queued task of a free region that no worker claimed or put back within
        ``republish_after`` seconds gets a new message (its own may be lost: a crash
        between commit and publish, a purged queue, a failed republish). One process
        wins each round; a duplicate message is dropped by the worker that gets it."""
        now = db_now(db.session)
        sent = 0
        for task in leases.unheard(now, self.republish_after, limit):
            if not leases.mark_republished(task, now):
                continue
            try:
                self.dispatch(task.task_id, task.region)
            except ApiError:  # the broker is down: the next round tries again
                return sent
            log.warning("Queued task %s of region %s republished", task.task_id, task.region)
            sent += 1
        return sent

    def report(self) -> None:
        """Store the changed progress of the running tasks (one small UPDATE each, at most
        once per interval however many chunks were sent), then raise the cancel flag of
        those whose cancel was requested, possibly through another server process."""
        live = self.running()
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
