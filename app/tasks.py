"""Background syncs: the bounded worker pool, the heartbeat and the recovery of dead tasks.

A task records its worker (``host:pid``) and a heartbeat refreshed every few seconds while
it runs; this is what lets any process tell a task that is really running somewhere from
one left ``syncing`` by a server that was stopped or killed (BEHAVIOUR.md 10.7).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import inspect, select, update
from sqlalchemy.exc import IntegrityError

from app.errors import ApiError
from app.models import FAILED, SYNCED, SYNCING, Task, db, utcnow
from app.regions import core
from glancesync.progress import UploadTracker

log = logging.getLogger("GlanceSync-API")
EXTENSION = "glancesync.tasks"
INTERRUPTED = "Sync interrupted: the server process running it stopped"
CREATE_ATTEMPTS = 5
CANCELLED = "cancelled"


@dataclass
class LiveTask:
    """What the thread of a running sync shares with the heartbeat thread: the progress it
    records, and the cancel flag the heartbeat thread sets when the database asks for it."""

    tracker: UploadTracker = field(default_factory=UploadTracker)
    cancel: threading.Event = field(default_factory=threading.Event)
    written: int = -1  # tracker version last stored


def this_worker() -> str:
    """``host:pid`` of the calling process (computed each time: gunicorn forks)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """A zombie is dead: a killed worker stays one until init reaps it (seconds, in some
    containers), and a restarted service must not take its tasks for running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


def is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stream:
            state = stream.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False  # no /proc (not Linux): trust the signal check
    return state in ("Z", "X")


class TaskRunner:
    """Runs syncs in a bounded thread pool and keeps the heartbeat of the tasks it owns."""

    def __init__(
        self,
        app: Flask,
        max_workers: int,
        heartbeat_interval: float,
        dead_after: float,
        progress_interval: float = 1.0,
    ) -> None:
        self.app = app
        self.heartbeat_interval = heartbeat_interval
        self.progress_interval = progress_interval
        self._live: dict[str, LiveTask] = {}
        self.dead_after = timedelta(seconds=dead_after)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sync")
        self._owned: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    # -- ownership -----------------------------------------------------------------------
    # Tasks run by any runner of this process (there may be several apps in one process):
    # a task of this pid that is not in this set has no thread working on it.
    _process_owned: set[str] = set()
    _process_lock = threading.Lock()

    def reserve(self, task_id: str) -> None:
        """Claim a task before it is committed, so this process never takes it for dead;
        from now on this runner keeps its heartbeat."""
        with self._process_lock:
            self._owned.add(task_id)
            self._process_owned.add(task_id)
            self._live[task_id] = LiveTask()
        self._ensure_heartbeat()

    def release(self, task_id: str) -> None:
        with self._process_lock:
            self._owned.discard(task_id)
            self._process_owned.discard(task_id)
            self._live.pop(task_id, None)

    def owned(self) -> list[str]:
        """The tasks of this runner (the ones it keeps the heartbeat of)."""
        with self._process_lock:
            return sorted(self._owned)

    @classmethod
    def owned_by_process(cls, task_id: str) -> bool:
        with cls._process_lock:
            return task_id in cls._process_owned

    def is_dead(self, task: Task, now: datetime) -> bool:
        """Stale heartbeat, or a worker of this host that no longer runs it."""
        if now - task.heartbeat > self.dead_after:
            return True
        host, _, pid_text = task.worker.rpartition(":")
        if host != socket.gethostname() or not pid_text.isdigit():
            return False
        pid = int(pid_text)
        if pid == os.getpid():
            return not self.owned_by_process(task.task_id)
        return not pid_alive(pid)

    # -- running -------------------------------------------------------------------------
    def launch(self, task_id: str, region: str) -> None:
        """Queue the sync; the answer to the POST does not wait for it."""
        self._pool.submit(self._run, task_id, region)

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        """Queue another kind of sync job (a fan-out group, ``app.fanout_tasks``)."""
        self._pool.submit(job, *args)

    def _run(self, task_id: str, region: str) -> None:
        live = self.live(task_id) or LiveTask()
        with self.app.app_context():
            try:
                status, message, images = self._sync(region, live)
            except Exception as exc:  # every failure must end the task, never leave it syncing
                log.exception("Sync task %s of region %s failed", task_id, region)
                status, message, images = FAILED, str(exc) or type(exc).__name__, []
                live.tracker.fail_unfinished()
            try:
                finish(task_id, status, message, images, live.tracker.snapshot())
            finally:
                self.release(task_id)
                db.session.remove()

    @staticmethod
    def _sync(region: str, live: LiveTask) -> tuple[str, str | None, list[dict]]:
        try:
            gs = core().glancesync()
        except ApiError as exc:
            return FAILED, exc.description, []
        result = gs.sync_region(
            region, progress=live.tracker, should_cancel=live.cancel.is_set
        ).to_dict()
        if result["failed"]:
            return FAILED, result["error"], result["images"]
        return SYNCED, result["summary"], result["images"]

    # -- heartbeat -----------------------------------------------------------------------
    def _ensure_heartbeat(self) -> None:
        with self._lock:
            if self._beater is None or not self._beater.is_alive():
                self._beater = threading.Thread(
                    target=self._beat_loop, name="sync-heartbeat", daemon=True
                )
                self._beater.start()

    def _beat_loop(self) -> None:
        """Every ``progress_interval``: store progress, poll cancels; the heartbeat itself
        only every ``heartbeat_interval``."""
        tick = max(0.01, min(self.heartbeat_interval, self.progress_interval))
        last_beat = time.monotonic()
        while not self._stop.wait(tick):
            try:
                self.report()
                if time.monotonic() - last_beat >= self.heartbeat_interval:
                    last_beat = time.monotonic()
                    self.beat()
            except Exception:  # a database hiccup must not stop later heartbeats
                log.exception("Heartbeat update failed")

    # -- progress and cancel -------------------------------------------------------------
    def live(self, task_id: str) -> LiveTask | None:
        with self._process_lock:
            return self._live.get(task_id)

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
            live = dict(self._live)
        if not live:
            return
        with self.app.app_context():
            for task_id, entry in live.items():
                version = entry.tracker.version
                if version != entry.written:
                    store_progress(task_id, entry.tracker.snapshot())
                    entry.written = version
            for task_id in cancel_requested(list(live)):
                live[task_id].cancel.set()
            db.session.commit()
            db.session.remove()

    def beat(self) -> None:
        """Refresh the heartbeat of every syncing task this process owns."""
        owned = self.owned()
        if not owned:
            return
        with self.app.app_context():
            db.session.execute(
                update(Task)
                .where(Task.task_id.in_(owned), Task.status == SYNCING)
                .values(heartbeat=utcnow())
            )
            db.session.commit()
            db.session.remove()

    def shutdown(self, wait: bool = True) -> None:
        self._stop.set()
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        for task_id in self.owned():
            self.release(task_id)


def finish(
    task_id: str,
    status: str,
    message: str | None,
    images: list[dict],
    progress: dict | None = None,
) -> None:
    """End the task; its final progress (states ``done``/``failed``) is kept for the record."""
    now = utcnow()
    values = {"progress": json.dumps(progress)} if progress is not None else {}
    db.session.execute(
        update(Task)
        .where(Task.task_id == task_id)
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


def store_progress(task_id: str, progress: dict) -> None:
    """Only while syncing: a late write must never replace the final progress."""
    db.session.execute(
        update(Task)
        .where(Task.task_id == task_id, Task.status == SYNCING)
        .values(progress=json.dumps(progress))
    )


def cancel_requested(task_ids: list[str]) -> list[str]:
    return list(
        db.session.scalars(
            select(Task.task_id).where(Task.task_id.in_(task_ids), Task.cancel_requested)
        )
    )


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


def runner() -> TaskRunner:
    return current_app.extensions[EXTENSION]


def fail_if_dead(task: Task, now: datetime) -> bool:
    """Mark a dead syncing task failed; the heartbeat condition spares one that just beat."""
    if not runner().is_dead(task, now):
        return False
    result = db.session.execute(
        update(Task)
        .where(Task.id == task.id, Task.status == SYNCING, Task.heartbeat == task.heartbeat)
        .values(status=FAILED, message=INTERRUPTED, updated=now)
    )
    db.session.commit()
    if result.rowcount:
        log.warning(
            "Task %s of region %s marked failed: %s", task.task_id, task.region, INTERRUPTED
        )
    return bool(result.rowcount)


def recover(region: str | None = None) -> int:
    """Fail the dead syncing tasks (of one region, or all); returns how many."""
    query = select(Task).where(Task.status == SYNCING)
    if region is not None:
        query = query.where(Task.region == region)
    now = utcnow()
    tasks = list(db.session.scalars(query))
    return sum(fail_if_dead(task, now) for task in tasks)


def syncing_task(region: str) -> Task | None:
    db.session.expire_all()
    return db.session.scalars(
        select(Task).where(Task.region == region, Task.status == SYNCING)
    ).first()


def start_sync(region: str, user: str, launch: bool = True) -> tuple[Task, bool]:
    """The region's live syncing task, or a new one started now (True when new); with
    ``launch=False`` the caller launches it (a fan-out group, ``app.fanout_tasks``).

    The partial unique index decides races: the loser's insert fails and it answers with
    the winner's task.
    """
    tasks = runner()
    for _ in range(CREATE_ATTEMPTS):
        existing = syncing_task(region)
        if existing is not None and not fail_if_dead(existing, utcnow()):
            return existing, False
        now = utcnow()
        task = Task(
            task_id=str(uuid.uuid4()),
            region=region,
            status=SYNCING,
            user_name=user,
            created=now,
            updated=now,
            message=None,
            images="[]",
            worker=this_worker(),
            heartbeat=now,
        )
        tasks.reserve(task.task_id)
        db.session.add(task)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            tasks.release(task.task_id)
            continue
        if launch:
            tasks.launch(task.task_id, region)
        return task, True
    raise RuntimeError(f"could not create or find the syncing task of region {region}")


def recover_at_start(app: Flask) -> None:
    """Startup recovery; skipped while the schema does not exist yet (``db upgrade``)."""
    with app.app_context():
        try:
            if not inspect(db.engine).has_table(Task.__tablename__):
                return
            count = recover()
        except Exception:  # an unreachable database must not stop manage.py commands
            log.exception("Recovery of interrupted tasks failed")
            db.session.rollback()
            return
        finally:
            db.session.remove()
        if count:
            log.warning("%d interrupted task(s) marked failed at start", count)


def init_tasks(app: Flask) -> TaskRunner:
    runner_ = TaskRunner(
        app,
        app.config["SYNC_WORKERS"],
        app.config["HEARTBEAT_INTERVAL"],
        app.config["DEAD_AFTER"],
        app.config.get("PROGRESS_INTERVAL", 1.0),
    )
    app.extensions[EXTENSION] = runner_
    return runner_
