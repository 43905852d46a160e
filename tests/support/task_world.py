"""The world of the task-lifecycle model: processes, their runners, syncs and messages.

Every actor of the real service runs its product code here, on the real database and
the real lease SQL, but only when the model says so, one step at a time, in the test's
thread: the lease loop (renew, sweep, claim, progress) of each process, a POST
(``start_sync``) or a group (``start_group``), a cancel, a broker message handled
(``handle_message``/``handle_group``), a sync ending. Nothing runs in a background
thread, so every interleaving is chosen by the model (hypothesis), not by timing.

A *process* is a slot holding one app and its runner with a worker identity of its own
(``as_process``). Syncs never upload: the runner's ``launch``/``submit`` record a job,
and the model later runs it with a fake engine whose outcome it picks.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, select

import app.leases
from app.broker import handle_group, handle_message
from app.models import Task, db
from app.regions import Core
from app.tasks import cancel, init_tasks, start_sync
from app.tasks.groups import start_group
from app.workers import process_scope
from glancesync.regions import RegionRef
from glancesync.result import RegionResult
from tests.support.model_clock import ModelClock
from tests.support.service_app import as_process

REGIONS = ("Burgos", "Caceres", "other:Madrid")
HEARTBEAT = 1.0  # the lease interval of every runner (model seconds)
DEAD_AFTER = 4.0  # >= 3 heartbeats, as issue 21 item 8 asks of a service
SLOW_RENEWAL = 1.0  # how long a "slow" renewal statement takes (its commit latency)
SETTINGS = {
    "HEARTBEAT_INTERVAL": HEARTBEAT,
    "DEAD_AFTER": DEAD_AFTER,
    "PROGRESS_INTERVAL": HEARTBEAT,
    "SYNC_WORKERS": 16,
    "QUEUE_TIMEOUT": 10.0,  # model seconds: a follow-up can outwait it behind a sync
    "RECOVER_ON_START": False,
}
OK, FAIL, ERROR = "ok", "fail", "error"


class InjectedFault(RuntimeError):
    """A failure the model makes happen inside a request (e.g. a database error)."""


class Retry(Exception):
    """Celery's ``task.retry``: the message goes back to the queue."""


class _Delivery:
    """What ``handle_message`` needs of Celery's bound task."""

    def retry(self, countdown: float) -> Retry:
        raise Retry(countdown)


@dataclass
class Job:
    """A sync handed to a runner's pool (``launch`` or ``submit``), not run yet."""

    slot: int
    fn: Any
    args: tuple
    members: list[tuple[str, str]]


@dataclass
class Process:
    index: int
    app: Flask
    runner: Any = None
    frozen: bool = False
    due: float = 0.0  # model time of its next lease-loop round
    generation: int = 0  # restarts (each one a new worker identity)


@dataclass
class World:
    """The model's actors and what it observed; the invariants read it (task_invariants)."""

    apps: list[Flask]
    monkeypatch: pytest.MonkeyPatch
    broker: bool = False
    clock: ModelClock = field(default_factory=ModelClock)
    processes: list[Process] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    messages: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    runs: Counter = field(default_factory=Counter)  # syncs started, per task id
    succeeded: set[str] = field(default_factory=set)  # tasks whose sync returned success
    renewal_delay: float = 0.0
    interrupt: tuple | None = None  # (n-th seam of this step, action), armed by a rule
    seams_seen: int = 0
    outcome: str = OK
    running: list[tuple[str, str]] = field(default_factory=list)  # members of the job run
    marks: dict[str, str] = field(default_factory=dict)  # region: task of a killed upload
    engine_errors: list[str] = field(default_factory=list)  # callbacks that failed the engine

    # -- building ------------------------------------------------------------------------
    def start(self) -> None:
        with self.apps[0].app_context():
            db.session.execute(delete(Task))
            db.session.commit()
            db.session.remove()
        self.monkeypatch.setattr(Core, "glancesync", lambda core: FakeEngine(self))
        heartbeat = app.leases.heartbeat

        def slow_heartbeat(*args, **kwargs):
            held = heartbeat(*args, **kwargs)
            self.clock.advance(self.renewal_delay)  # the commit took that long
            return held

        self.monkeypatch.setattr(app.leases, "heartbeat", slow_heartbeat)
        for index, flask_app in enumerate(self.apps):
            process = Process(index, flask_app, due=HEARTBEAT * (index + 1) / 2)
            self.processes.append(process)
            self.boot(process)

    def boot(self, process: Process) -> None:
        """A new process start in this slot: a fresh runner with its own identity."""
        if process.runner is not None:
            process.runner.shutdown(wait=False)
        process.generation += 1
        runner = init_tasks(process.app)
        as_process(process.app, f"model-{process.index}-{process.generation}/{process_scope()}")
        runner.start = lambda: None  # the model steps the lease loop itself
        index = process.index
        runner.launch = lambda task_id, region: self.jobs.append(
            Job(index, runner._run, (task_id, region), [(task_id, region)])
        )
        runner.submit = lambda fn, *args: self.jobs.append(Job(index, fn, args, list(args[-1])))
        claim = runner.try_claim

        def try_claim(task_id: str, region: str, launch: bool = True) -> bool:
            self.seam()
            return claim(task_id, region, launch)

        runner.try_claim = try_claim
        if self.broker:
            runner.dispatch = lambda task_id, region: self.messages.append(
                ("one", [(task_id, region)])
            )
            runner.dispatch_group = lambda members: self.messages.append(("group", list(members)))
        process.runner = runner

    # -- the seams where another actor may step in ------------------------------------------
    def seam(self) -> None:
        """Called at each claim attempt: the armed interruption fires at its n-th seam."""
        if self.interrupt is None:
            return
        self.seams_seen += 1
        at, action = self.interrupt
        if self.seams_seen != at:
            return
        self.interrupt = None
        if action == "crash":
            raise InjectedFault("injected failure at a claim")
        self.lease_round(action)  # another thread (or process) runs its lease loop now

    def armed(self, interrupt: tuple | None) -> None:
        self.interrupt, self.seams_seen = interrupt, 0

    # -- actors -----------------------------------------------------------------------------
    def live(self) -> list[Process]:
        return [p for p in self.processes if not p.frozen]

    def runnable_jobs(self) -> list[int]:
        return [i for i, job in enumerate(self.jobs) if not self.processes[job.slot].frozen]

    def lease_round(self, index: int) -> None:
        """One round of a process's lease and progress threads (the product's own steps)."""
        process = self.processes[index]
        process.runner._lease_loop()
        process.runner.report()
        process.due = self.clock.now + HEARTBEAT

    def tick(self, seconds: float, order: list[int], slow: bool) -> None:
        """Time passes; every process that is not frozen runs its lease loop when due
        (ties in ``order``), renewals taking ``SLOW_RENEWAL`` when ``slow``."""
        end = self.clock.now + seconds
        self.renewal_delay = SLOW_RENEWAL if slow else 0.0
        try:
            while True:
                due = [p for p in self.live() if p.due <= end]
                if not due:
                    break
                first = min(due, key=lambda p: (p.due, order.index(p.index)))
                self.clock.set(first.due)
                self.lease_round(first.index)
        finally:
            self.renewal_delay = 0.0
        self.clock.set(end)

    def request(self, index: int, call, *args) -> Any:
        """A request (or a broker delivery) served by a process: its app context, a
        failure answered as an error (the model keeps going, as the service does)."""
        with self.processes[index].app.app_context():
            try:
                return call(*args)
            finally:
                db.session.remove()

    def post(self, index: int, region: str, follow_up: bool) -> None:
        self._guarded(index, start_sync, region, "model", follow_up=follow_up)

    def _guarded(self, index: int, call, *args, **kwargs) -> Any:
        try:
            return self.request(index, lambda: call(*args, **kwargs))
        except InjectedFault:
            return None
        finally:
            self.interrupt = None

    def post_group(self, index: int, regions: list[str]) -> None:
        self._guarded(index, start_group, regions, "model")

    def cancel(self, index: int, region: str) -> None:
        def cancel_region() -> None:
            task = db.session.scalars(
                select(Task).where(Task.region == region, Task.status.in_(("queued", "syncing")))
            ).first()
            if task is not None:
                cancel(task)

        self._guarded(index, cancel_region)

    def deliver(self, message: int, index: int) -> None:
        """A worker takes a message (late ack: it is gone once handled or retried)."""
        kind, members = self.messages.pop(message)
        runner_app = self.processes[index].app
        try:
            if kind == "one":
                self._guarded(index, handle_message, runner_app, _Delivery(), *members[0])
            else:
                self._guarded(index, handle_group, runner_app, _Delivery(), members)
        except Retry:
            self.messages.append((kind, members))  # republished

    def finish(self, job: int, outcome: str) -> None:
        """The sync of a job ends now with ``outcome`` (the product's own end path)."""
        current = self.jobs.pop(job)
        self.outcome, self.running = outcome, current.members
        try:
            current.fn(*current.args)
        finally:
            self.running = []

    def restart(self, index: int) -> None:
        """``kill -9`` and a new start of the process: its jobs die with it."""
        process = self.processes[index]
        for job in self.jobs:
            if job.slot == index:  # its uploads die marked with their run id
                self.marks.update({region: task_id for task_id, region in job.members})
        self.jobs = [job for job in self.jobs if job.slot != index]
        process.frozen = False
        self.boot(process)
        process.due = self.clock.now
        with process.app.app_context():
            process.runner.sweep()  # start_service's recovery
            db.session.remove()


class FakeEngine:
    """The GlanceSync the runners call: the model decided the outcome of this sync."""

    def __init__(self, world: World) -> None:
        self.world = world

    def _one(self, task_id: str, should_stop) -> RegionResult:
        self.world.runs[task_id] += 1
        if should_stop():
            return RegionResult("", failed=True, error="Sync cancelled")
        if self.world.outcome == ERROR:
            raise InjectedFault("the sync broke")
        if self.world.outcome == FAIL:
            return RegionResult("", failed=True, error="upload failed")
        self.world.succeeded.add(task_id)
        return RegionResult("", summary="synchronised")

    def region_statuses(self, region: str) -> SimpleNamespace:
        return SimpleNamespace(images=[])  # the metrics' look after a sync

    def _leftovers(self, region: str, runs) -> None:
        """The engine's preparation asks whether the run of a marked upload is dead."""
        mark = self.world.marks.get(region)
        if mark is None or runs is None:
            return
        try:
            runs.is_dead(f"task:{mark}")
        except Exception as exc:  # the real engine fails the region (issue 21 item 2)
            self.world.engine_errors.append(f"{region}: {type(exc).__name__}: {exc}")
            raise

    def sync_region(self, region: str, progress=None, should_cancel=None, runs=None):
        task_id = dict((r, t) for t, r in self.world.running)[region]
        self._leftovers(region, runs)  # in the caller's thread, as the engine does
        result = self._one(task_id, should_cancel)
        result.region = region
        return result

    def sync_regions(self, regions: list[str], options) -> None:
        ids = {region: task_id for task_id, region in self.world.running}
        with ThreadPoolExecutor(1) as pool:  # preparation runs in the engine's pool
            for region in regions:
                pool.submit(self._leftovers, region, options.runs).result()
        for region in regions:
            ref = RegionRef(*region.split(":", 1)) if ":" in region else RegionRef("master", region)
            result = self._one(ids[region], lambda ref=ref: options.cancel(ref))
            result.region = region
            options.on_done(ref, result)
