"""Running several regions at once: the options of a run and the batches of regions.

``GlanceSync.sync_regions`` cuts its regions into batches of ``max_workers``; a batch is
listed and planned when it starts (a region queued behind others never executes an old
plan), then its regions run in threads together, those uploading the same master image
sharing one read of it (``glancesync.fanout``). Every region of a batch has a worker,
so a region never waits for a worker while a shared read waits for it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from glancesync.errors import Cancelled, ErrorKind
from glancesync.executor import ProgressFactory
from glancesync.fanout import DEFAULT_JOIN_TIMEOUT, FanOut
from glancesync.leftovers import Marked, Runs
from glancesync.planner import UPLOAD_KINDS, Plan
from glancesync.regionlock import RegionLock
from glancesync.regions import RegionRef
from glancesync.result import RegionResult
from glancesync.selection import Catalogue
from glancesync.transfer import RegionTransfer

if TYPE_CHECKING:
    from glancesync.engine import GlanceSync, RegionView


@dataclass(frozen=True)
class SyncOptions:
    """How a run syncs its regions (``sync_regions``; ``sync_region`` uses a few).

    ``cancel(ref)`` is the one cancel check: true (or raising ``Cancelled``) once the
    region must stop. It is polled between actions and between the chunks of an upload;
    a region cancelled before its batch starts is not started. A run-wide stop (the
    CLI's signal flag) is a check that ignores its region; the service gives each
    region its task's, so a cancelled region withdraws from the shared reads while the
    others go on.
    ``log_for`` gives a region its logger as its batch starts (else the engine's);
    ``on_done`` is called as each region ends, a region not started included.
    ``runs``: see ``GlanceSync.sync_region`` (None: the engine's own run).
    """

    dry_run: bool = False
    max_workers: int = 1
    log_for: Callable[[RegionRef], logging.Logger] | None = None
    progress: ProgressFactory | None = None
    cancel: Callable[[RegionRef], bool] | None = None
    on_done: Callable[[RegionRef, RegionResult], None] | None = None
    join_timeout: float = DEFAULT_JOIN_TIMEOUT
    runs: Runs | None = None

    def cancel_of(self, ref: RegionRef) -> Callable[[], bool] | None:
        """The cancel check of one region, as the executor and the lock wait poll it."""
        return None if self.cancel is None else functools.partial(self.cancel, ref)

    def stopped(self, ref: RegionRef) -> str | None:
        """The cancel message once ``ref`` is cancelled (the check may raise it), else None."""
        try:
            cancelled = self.cancel is not None and self.cancel(ref)
        except Cancelled as exc:
            return str(exc)
        return "cancelled" if cancelled else None

    def finish(self, ref: RegionRef, result: RegionResult) -> RegionResult:
        if self.on_done is not None:
            self.on_done(ref, result)
        return result

    def log_of(self, ref: RegionRef, default: logging.Logger) -> logging.Logger:
        return self.log_for(ref) if self.log_for else default


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
    # how its copies travel (glancesync.transfer); chosen at prepare time so that the
    # fan-out never waits for a region whose Glance imports server-side
    transfer: RegionTransfer | None = None

    def unlock(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def upload_order(self) -> list[str]:
        """The master image ids this region uploads, in the order its plan uploads them."""
        assert self.plan is not None
        if self.transfer is not None and self.transfer.server_side:
            return []  # the region's Glance reads the master itself
        return [
            action.master.id
            for action in self.plan.actions
            if action.kind in UPLOAD_KINDS and action.master is not None
        ]


def run_batches(
    gs: GlanceSync, refs: list[RegionRef], catalogue: Catalogue, options: SyncOptions
) -> list[RegionResult]:
    """Every batch in turn, in one pool; results in ``refs`` order."""
    workers = max(1, options.max_workers)
    batches = [refs[i : i + workers] for i in range(0, len(refs), workers)]
    results: list[RegionResult] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="region") as pool:
        for batch in batches:
            results += _run_batch(gs, pool, batch, catalogue, options)
    return results


def _run_batch(
    gs: GlanceSync,
    pool: ThreadPoolExecutor,
    batch: list[RegionRef],
    catalogue: Catalogue,
    options: SyncOptions,
) -> list[RegionResult]:
    """List, plan and execute one batch; its regions share master reads. A region
    already cancelled is not started: failed with the cancel's message, nothing logged."""
    stopped = {ref.full: options.stopped(ref) for ref in batch}
    started = [ref for ref in batch if stopped[ref.full] is None]
    logs = {ref.full: options.log_of(ref, gs.log) for ref in started}
    futures = [pool.submit(gs.prepare, ref, catalogue, logs[ref.full], options) for ref in started]
    prepared = _prepared_all(futures)
    for item in prepared.values():
        if item.failure is not None:
            options.finish(item.ref, item.failure)
    ran = _run_prepared(gs, pool, list(prepared.values()), options)
    results = []
    for ref in batch:
        if ref.full in ran:
            results.append(ran[ref.full])
        else:
            error, kind = stopped[ref.full], ErrorKind.CANCELLED
            failure = RegionResult(ref.full, failed=True, error=error, error_kind=kind)
            results.append(options.finish(ref, failure))
    return results


def _prepared_all(futures: list[Future[Prepared]]) -> dict[str, Prepared]:
    """Every region's preparation; when one raised, the regions prepared beside it give
    their lock files back before the error goes on (else a service process kept them
    held, and every later run of those regions on this host was refused as busy)."""
    done = [future.exception() is None for future in futures]  # waits for all of them
    if all(done):
        return {item.ref.full: item for item in (future.result() for future in futures)}
    for future, ok in zip(futures, done, strict=True):
        if ok:
            future.result().unlock()
    raise next(future.exception() for future, ok in zip(futures, done, strict=True) if not ok)


def _prepare(
    gs: GlanceSync,
    catalogue: Catalogue,
    logs: dict[str, logging.Logger],
    options: SyncOptions,
    ref: RegionRef,
) -> Prepared:
    return gs.prepare(ref, catalogue, logs[ref.full], options)


def _run_prepared(
    gs: GlanceSync, pool: ThreadPoolExecutor, prepared: list[Prepared], options: SyncOptions
) -> dict[str, RegionResult]:
    """Execute the planned regions in the pool, sharing master reads when not dry-run."""
    runnable = [item for item in prepared if item.failure is None]
    try:
        fanout = None if options.dry_run else _fanout(gs, runnable, options.join_timeout)
    except BaseException:  # nothing runs them: their locks go back now
        for item in runnable:
            item.unlock()
        raise
    futures = {
        item.ref.full: pool.submit(_run_shared, gs, item, fanout, options) for item in runnable
    }
    results = {
        item.ref.full: futures[item.ref.full].result() if item.failure is None else item.failure
        for item in prepared
    }
    if fanout is not None:
        gs.log.debug("fan-out: %s", fanout.stats())
    return results


def _fanout(gs: GlanceSync, prepared: list[Prepared], join_timeout: float) -> FanOut | None:
    """A FanOut knowing each region's upload order and, for each master image, the
    regions that upload it; None when no image is uploaded by more than one region."""
    orders = {item.ref.full: item.upload_order() for item in prepared}
    uploaders: dict[str, set[str]] = {}
    for region, order in orders.items():
        for image_id in order:
            uploaders.setdefault(image_id, set()).add(region)
    shared = {image_id: regions for image_id, regions in uploaders.items() if len(regions) > 1}
    if not shared:
        return None
    main = gs.config.main
    fanout = FanOut(
        gs.source_for,
        join_timeout,
        spool_bytes=main.spool_max_mb * 1024 * 1024,
        spool_dir=main.spool_dir or None,
    )
    for region, order in orders.items():
        fanout.plan(region, order)
    for image_id, regions in shared.items():
        fanout.expect(image_id, regions)
    return fanout


def _run_shared(
    gs: GlanceSync, prepared: Prepared, fanout: FanOut | None, options: SyncOptions
) -> RegionResult:
    """One region's executor in a worker; it leaves the fan-out however it ends."""
    region = prepared.ref.full
    source_for = gs.source_for
    if fanout is not None:
        source_for = functools.partial(fanout.source_for, region)
    try:
        result = gs.execute(prepared, options, source_for)
    finally:
        prepared.unlock()
        if fanout is not None:
            fanout.withdraw(region)
    return options.finish(prepared.ref, result)
