"""The library entry point: one object that knows the configuration and the backends.

The CLI and the REST service both go through ``GlanceSync``; it turns region names
into backend calls and runs select -> status -> plan -> execute for one region
(``sync_region``), or for several at once sharing the master reads (``sync_regions``).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from glancesync import report
from glancesync.backends.base import Backend, ImageSource
from glancesync.config import Config, Target
from glancesync.errors import BackendError, Cancelled, Interrupted
from glancesync.executor import Executor, ProgressFactory, SourceFor
from glancesync.fanout import DEFAULT_JOIN_TIMEOUT, FanOut
from glancesync.image import Image
from glancesync.leftovers import Marked, Runs, classify, cli_run_dead, delete_leftovers
from glancesync.obsolete import obsolete_updates
from glancesync.planner import UPLOAD_KINDS, Plan, plan_region
from glancesync.prefetch import Prefetch
from glancesync.regionlock import BUSY, RegionBusy, RegionLock, lock_path, usable_lock_dir
from glancesync.regions import RegionRef, expand_target, parse_region, region_list
from glancesync.result import RegionResult
from glancesync.selection import Catalogue, master_catalogue, region_map, synchronisable
from glancesync.status import RegionStatus, region_status

LOGGER_NAME = "GlanceSync-Client"


@dataclass
class RegionView:
    """Everything known about one region before any change: the input of a plan."""

    ref: RegionRef
    target: Target
    tenant_id: str
    images: list[Image]
    wanted: dict[str, Image]
    status: RegionStatus


class GlanceSync:
    def __init__(
        self,
        config: Config,
        backends: dict[str, Backend] | None = None,
        log: logging.Logger | None = None,
    ):
        if backends is None:
            from glancesync.backends import make_backends

            backends = make_backends(config)
        self.config = config
        self.backends = backends
        self.log = log or logging.getLogger(LOGGER_NAME)
        self._prefetch: Prefetch[tuple[str, list[Image]]] = Prefetch()
        self._lock_dir: str | None = None
        # The run of syncs that name none (``runs=None``): one id per GlanceSync, so a
        # later sync of this object deletes what an earlier one of it left.
        self.runs = _default_runs()

    # -- regions -------------------------------------------------------------------------
    def parse(self, name: str) -> RegionRef:
        return parse_region(name, self.config.targets)

    def full_name(self, name: str) -> str:
        return self.parse(name).full

    def expand(self, target: str) -> list[RegionRef]:
        """``target:`` as in 7.3: every region minus ignore_regions (and the master region)."""
        regions = self.backends[target].regions()
        ignore = self.config.targets[target].ignore_regions
        return expand_target(target, regions, ignore, self.config.main.master_region)

    def region_list(self, args: list[str]) -> list[RegionRef]:
        return region_list(
            args, self.config.targets, self.expand, self.config.main.preferable_order
        )

    def show_regions(self) -> list[str]:
        return [ref.full for target in self.config.targets for ref in self.expand(target)]

    def known_regions(self) -> list[str]:
        """Every region of every target, the master region included (the service's list)."""
        return [
            RegionRef(target, region).full
            for target, backend in self.backends.items()
            for region in backend.regions()
        ]

    # -- reading -------------------------------------------------------------------------
    def load_master(
        self, log: logging.Logger | None = None, prefetch: list[RegionRef] | None = None
    ) -> Catalogue:
        """List the master region once and reduce it to the catalogue (3.1).

        ``prefetch``: regions whose images are listed at the same time, in threads, for
        their next ``view``. A first request to a Glance waits for it to validate the
        token with Keystone; overlapping the master's wait with the regions' shortens
        the time before the first upload. Only list regions about to be viewed: a
        prefetched listing is as old as this call.
        """
        log = log or self.log
        refs = prefetch or []
        self._prefetch.start(refs, self._listing)
        backend = self.backends["master"]
        try:
            images = backend.list_images(self.config.main.master_region)
            catalogue = master_catalogue(images, backend.tenant_id())
        except BaseException:
            self._prefetch.drop(refs)
            raise
        for warning in catalogue.warnings:
            log.warning(warning)
        return catalogue

    def _listing(self, ref: RegionRef) -> tuple[str, list[Image]]:
        """The project id of the region's target and the region's images (BackendError)."""
        backend = self.backends[ref.target]
        return backend.tenant_id(), backend.list_images(ref.name)

    def view(self, ref: RegionRef, catalogue: Catalogue, log: logging.Logger) -> RegionView:
        target = self.config.targets[ref.target]
        tenant_id, images = self._prefetch.take(ref) or self._listing(ref)
        wanted, warnings = synchronisable(catalogue, target)
        kept, more = region_map(images, wanted, target, tenant_id, ref.full)
        for warning in warnings + more:
            log.warning(warning)
        status = region_status(wanted, kept, target, catalogue.unresolved)
        return RegionView(ref, target, tenant_id, images, wanted, status)

    def region_statuses(
        self, region: str | RegionRef, catalogue: Catalogue | None = None
    ) -> RegionStatus:
        ref = self._ref(region)
        catalogue = catalogue or self.load_master(prefetch=[ref])
        return self.view(ref, catalogue, self.log).status

    def image_report(self, region: str) -> list[dict]:
        """The REST view of a region's statuses (10.6); nothing is written."""
        return [report.image_entry(s) for s in self.region_statuses(region).images]

    # -- syncing -------------------------------------------------------------------------
    def plan(self, view: RegionView, catalogue: Catalogue, log: logging.Logger) -> Plan:
        obsolete = []
        if view.target.support_obsolete_images:
            obsolete, warnings = obsolete_updates(
                catalogue, view.wanted, view.images, view.target, view.tenant_id
            )
            for warning in warnings:
                log.warning(warning)
        return plan_region(view.ref.full, view.status, view.target, obsolete)

    def sync_region(
        self,
        region: str | RegionRef,
        dry_run: bool = False,
        catalogue: Catalogue | None = None,
        log: logging.Logger | None = None,
        progress: ProgressFactory | None = None,
        should_cancel: Callable[[], bool] | None = None,
        runs: Runs | None = None,
    ) -> RegionResult:
        """Sync one region; failures are reported in the result, never raised (6.6).

        ``runs`` names this run in its upload markers and tells which other runs are dead
        (glancesync.leftovers); by default ``self.runs`` (a CLI-style run id). A real sync holds the
        region's lock file (glancesync.regionlock) from its listing to its end.
        """
        log = log or self.log
        ref = self._ref(region)
        run = _RunOptions(dry_run, progress, should_cancel, runs=runs or self.runs)
        try:
            catalogue = catalogue or self.load_master(log, prefetch=[ref])
        except BackendError as exc:
            return _failed(ref, exc, log)
        prepared = self._prepare(ref, catalogue, log, run)
        if prepared.failure is not None:
            return prepared.failure
        try:
            return self._execute(prepared, run, self._source_for, run.cancel_of(ref))
        finally:
            prepared.unlock()

    def sync_regions(
        self,
        regions: list[str | RegionRef],
        dry_run: bool = False,
        max_workers: int = 1,
        log_for: Callable[[RegionRef], logging.Logger] | None = None,
        progress: ProgressFactory | None = None,
        should_cancel: Callable[[], bool] | None = None,
        on_done: Callable[[RegionRef, RegionResult], None] | None = None,
        catalogue: Catalogue | None = None,
        join_timeout: float = DEFAULT_JOIN_TIMEOUT,
        cancel_for: Callable[[RegionRef], Callable[[], bool]] | None = None,
        runs: Runs | None = None,
    ) -> list[RegionResult]:
        """Sync several regions, in batches of ``max_workers`` regions run in threads.

        The master is listed once. Each batch is listed and planned when it starts (a
        region queued behind others never executes an old plan), then its regions run
        together, those uploading the same master image sharing one read of it (fan-out,
        ``glancesync.fanout``). ``log_for`` gives a region its logger as its batch starts;
        ``on_done`` is called as each region ends. Results come in ``regions`` order;
        failures are reported in them, never raised (6.6). Once a cancel is seen, the
        batches not started are not started: their result is failed, with the cancel's
        message, and nothing is logged for them.

        ``should_cancel`` cancels every region; ``cancel_for(ref)`` gives one region its own
        check, so a cancelled region withdraws from the shared reads while the others go on.
        Both are polled between actions and between the chunks of an upload.
        """
        refs = [self._ref(region) for region in regions]
        run = _RunOptions(
            dry_run,
            progress,
            should_cancel,
            on_done or (lambda ref, result: None),
            cancel_for,
            runs or self.runs,
        )
        workers = max(1, max_workers)
        batches = [refs[i : i + workers] for i in range(0, len(refs), workers)]
        try:
            catalogue = catalogue or self.load_master(self.log, prefetch=batches[0] if refs else [])
        except BackendError as exc:
            return [
                run.finish(ref, _failed(ref, exc, _log_of(log_for, ref, self.log))) for ref in refs
            ]
        results: list[RegionResult] = []
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="region") as pool:
            for batch in batches:
                stopped = run.stopped()
                if stopped is not None:
                    results += [RegionResult(ref.full, failed=True, error=stopped) for ref in batch]
                    continue
                logs = {ref.full: _log_of(log_for, ref, self.log) for ref in batch}
                results += self._run_batch(pool, batch, logs, catalogue, run, join_timeout)
        return results

    def _run_batch(
        self,
        pool: ThreadPoolExecutor,
        batch: list[RegionRef],
        logs: dict[str, logging.Logger],
        catalogue: Catalogue,
        run: _RunOptions,
        join_timeout: float,
    ) -> list[RegionResult]:
        """List, plan and execute one batch; its regions share master reads."""
        prepared = list(
            pool.map(lambda ref: self._prepare(ref, catalogue, logs[ref.full], run), batch)
        )
        for item in prepared:
            if item.failure is not None:
                run.finish(item.ref, item.failure)
        return self._run_prepared(pool, prepared, len(batch), run, join_timeout)

    # -- syncing internals ---------------------------------------------------------------
    def _ref(self, region: str | RegionRef) -> RegionRef:
        return region if isinstance(region, RegionRef) else self.parse(region)

    def _prepare(
        self, ref: RegionRef, catalogue: Catalogue, log: logging.Logger, run: _RunOptions
    ) -> Prepared:
        """Lock (real syncs), view and plan of a region; a backend error, a busy lock or a
        cancel makes it a failed result instead, with the lock given back."""
        lock = None
        try:
            lock = None if run.dry_run else self._lock(ref, run.cancel_of(ref))
            view = self.view(ref, catalogue, log)
            marked = classify(
                view.images, view.tenant_id, run.runs, view.target.leftover_age, self._clock(ref)
            )
            plan = self.plan(view, catalogue, log)
        except RegionBusy:
            return Prepared(
                ref, log, failure=_failed(ref, BackendError(f"{ref.full}: {BUSY}"), log)
            )
        except BackendError as exc:
            if lock is not None:
                lock.release()
            return Prepared(ref, log, failure=_failed(ref, exc, log))
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return Prepared(ref, log, view, plan, marked=marked, lock=lock)

    def _lock(self, ref: RegionRef, should_cancel: Callable[[], bool] | None) -> RegionLock | None:
        """The region's lock file, taken (RegionBusy after ``lock_wait``); None when its
        backend has nothing to lock. A prefetched listing started before another run gave
        the lock back is dropped: it may miss what that run did."""
        key = self.backends[ref.target].lock_key(ref.name)
        try:
            if self._lock_dir is None:
                self._lock_dir = usable_lock_dir(self.config.main.lock_dir)
            lock = RegionLock(lock_path(self._lock_dir, key, ref.full))
            lock.acquire(self.config.main.lock_wait, should_cancel)
        except OSError as exc:
            raise BackendError(f"{ref.full}: Cannot lock the region. Cause: {exc}") from None
        started = self._prefetch.started(ref)
        if started is not None and (lock.waited or lock.freed_at >= started):
            self._prefetch.drop([ref])
        return lock

    def _execute(
        self,
        prepared: Prepared,
        run: _RunOptions,
        source_for: SourceFor,
        should_cancel: Callable[[], bool] | None,
    ) -> RegionResult:
        ref, view, plan = prepared.ref, prepared.view, prepared.plan
        assert view is not None and plan is not None
        backend = self.backends[ref.target]
        if not run.dry_run:
            delete_leftovers(backend, ref.name, ref.full, prepared.marked.leftovers, prepared.log)
        executor = Executor(
            plan,
            backend,
            ref.name,
            view.status.region_map,
            prepared.log,
            run.dry_run,
            source_for,
            run.progress,
            should_cancel,
            run_id=run.runs.run_id,
            busy=prepared.marked.busy,
            busy_now=self._busy_now(ref, view, run.runs),
        )
        return executor.run()

    def _busy_now(
        self, ref: RegionRef, view: RegionView, runs: Runs
    ) -> Callable[[str], bool] | None:
        """Whether another run started uploading an image since the listing (a run of
        another host, or one that planned before this one): asked before each upload,
        when the backend can list one name (``images_named``)."""
        named = self.backends[ref.target].images_named
        age, clock = view.target.leftover_age, self._clock(ref)
        return lambda name: (
            name in classify(named(ref.name, name), view.tenant_id, runs, age, clock).busy
        )

    def _clock(self, ref: RegionRef) -> Callable[[], datetime | None] | None:
        """The region's clock when its backend has one (Glance's ``Date``), for the age
        of marked images: created and judged by the same clock, whatever this host's."""
        return functools.partial(self.backends[ref.target].server_now, ref.name)

    def _run_prepared(
        self,
        pool: ThreadPoolExecutor,
        prepared: list[Prepared],
        workers: int,
        run: _RunOptions,
        join_timeout: float,
    ) -> list[RegionResult]:
        """Execute the planned regions in the pool, sharing master reads when not dry-run."""
        runnable = [item for item in prepared if item.failure is None]
        fanout = None if run.dry_run else self._fanout(runnable, join_timeout)
        slots = _Slots(fanout, [item.ref.full for item in runnable], workers)
        futures = [
            None if item.failure else pool.submit(self._run_shared, item, fanout, slots, run)
            for item in prepared
        ]
        results = [
            future.result() if future is not None else item.failure
            for item, future in zip(prepared, futures, strict=True)
        ]
        if fanout is not None:
            self.log.debug("fan-out: %s", fanout.stats())
        return results

    def _fanout(self, prepared: list[Prepared], join_timeout: float) -> FanOut | None:
        """A FanOut expecting, for each master image, the regions that upload it; None when
        no image is uploaded by more than one region."""
        uploaders: dict[str, set[str]] = {}
        for item in prepared:
            assert item.plan is not None
            for action in item.plan.actions:
                if action.kind in UPLOAD_KINDS and action.master is not None:
                    uploaders.setdefault(action.master.id, set()).add(item.ref.full)
        shared = {image_id: regions for image_id, regions in uploaders.items() if len(regions) > 1}
        if not shared:
            return None
        main = self.config.main
        fanout = FanOut(
            self._source_for,
            join_timeout,
            spool_bytes=main.spool_max_mb * 1024 * 1024,
            spool_dir=main.spool_dir or None,
        )
        for image_id, regions in shared.items():
            fanout.expect(image_id, regions)
        return fanout

    def _run_shared(
        self, prepared: Prepared, fanout: FanOut | None, slots: _Slots, run: _RunOptions
    ) -> RegionResult:
        """One region's executor in a worker; it leaves the fan-out however it ends."""
        region = prepared.ref.full
        source_for = self._source_for
        if fanout is not None:
            source_for = functools.partial(fanout.source_for, region)
        try:
            result = self._execute(prepared, run, source_for, run.cancel_of(prepared.ref))
        finally:
            prepared.unlock()
            slots.finished(region)
        return run.finish(prepared.ref, result)

    def _source_for(self, master: Image) -> ImageSource:
        return self.backends["master"].image_source(self.config.main.master_region, master)


@dataclass
class Prepared:
    """A region ready to execute (view and plan), or its failed result."""

    ref: RegionRef
    log: logging.Logger
    view: RegionView | None = None
    plan: Plan | None = None
    failure: RegionResult | None = None
    marked: Marked = field(default_factory=lambda: Marked([], frozenset()))
    lock: RegionLock | None = None

    def unlock(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


@dataclass
class _RunOptions:
    """What every region of one ``sync_regions`` call shares."""

    dry_run: bool
    progress: ProgressFactory | None
    should_cancel: Callable[[], bool] | None
    on_done: Callable[[RegionRef, RegionResult], None] = lambda ref, result: None
    cancel_for: Callable[[RegionRef], Callable[[], bool]] | None = None
    runs: Runs = field(default_factory=lambda: _default_runs())

    def stopped(self) -> str | None:
        """The run's cancel message once it is cancelled (the check may raise it), else None."""
        try:
            cancelled = self.should_cancel is not None and self.should_cancel()
        except Cancelled as exc:
            return str(exc)
        return "cancelled" if cancelled else None

    def cancel_of(self, ref: RegionRef) -> Callable[[], bool] | None:
        """The cancel check of one region: the run's, or-ed with the region's own."""
        checks = [c for c in (self.should_cancel, self.cancel_for and self.cancel_for(ref)) if c]
        if len(checks) < 2:
            return checks[0] if checks else None
        return lambda: any(check() for check in checks)

    def finish(self, ref: RegionRef, result: RegionResult) -> RegionResult:
        self.on_done(ref, result)
        return result


class _Slots:
    """Tells the fan-out which regions hold a worker, mirroring the pool's FIFO order.

    A queued region is ``defer``-red so no broadcast waits for a region that cannot run
    until some other one finishes; when a region finishes, the next queued one gets its
    worker and is activated before it starts, so its peers do wait for it.
    """

    def __init__(self, fanout: FanOut | None, regions: list[str], workers: int):
        self._fanout = fanout
        self._queued = deque(regions[workers:])
        self._lock = threading.Lock()
        if fanout is not None:
            for region in self._queued:
                fanout.defer(region)

    def finished(self, region: str) -> None:
        if self._fanout is None:
            return
        self._fanout.withdraw(region)
        with self._lock:
            following = self._queued.popleft() if self._queued else None
        if following is not None:
            self._fanout.activate(following)


def _default_runs() -> Runs:
    """A library caller that names no run: a new CLI-style run id, and the CLI's test of
    which runs are dead (same host, process gone)."""
    return Runs(is_dead=cli_run_dead)


def _log_of(
    log_for: Callable[[RegionRef], logging.Logger] | None, ref: RegionRef, default: logging.Logger
) -> logging.Logger:
    return log_for(ref) if log_for else default


def _failed(ref: RegionRef, exc: BackendError, log: logging.Logger) -> RegionResult:
    """A region that fails before its executor runs; a cancel (while waiting for the
    region's lock) is logged as the executor logs one."""
    if isinstance(exc, Interrupted):
        log.error(f"{ref.full}: {exc}")
    elif isinstance(exc, Cancelled):
        log.error(f"{ref.full}: sync {exc}")
    else:
        log.error(str(exc))
    return RegionResult(ref.full, failed=True, error=str(exc))
