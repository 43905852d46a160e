"""The library entry point: one object that knows the configuration and the backends.

The CLI and the REST service both go through ``GlanceSync``; it turns region names
into backend calls and runs select -> status -> plan -> execute for one region
(``sync_region``), or for several at once sharing the master reads (``sync_regions``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from glancesync import report, storecopies, stores
from glancesync.backends.base import Backend, ImageSource
from glancesync.batch import Prepared, SyncOptions, run_batches
from glancesync.config import Config, Target
from glancesync.errors import BackendError, Cancelled, Interrupted
from glancesync.executor import Executor, ProgressFactory, SourceFor
from glancesync.image import Image
from glancesync.leftovers import (
    Marked,
    Runs,
    classify,
    cli_run_dead,
    delete_leftovers,
    unmark_verified,
)
from glancesync.obsolete import obsolete_updates
from glancesync.planner import Plan, plan_region
from glancesync.prefetch import Prefetch
from glancesync.regionlock import BUSY, RegionBusy, RegionLock, lock_path, usable_lock_dir
from glancesync.regions import RegionRef, expand_target, parse_region, region_list
from glancesync.result import RegionResult
from glancesync.selection import Catalogue, master_catalogue, region_map, synchronisable
from glancesync.sharing import MasterMembers, member_plans
from glancesync.status import RegionStatus, region_status
from glancesync.transfer import PROXY, RegionTransfer, falls_back, needs_probe, region_path

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
    marked: Marked = field(default_factory=lambda: Marked([], frozenset()))
    stores: tuple[str, ...] = ()  # the stores every copy must be in (glancesync.stores)


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
        self._masters: MasterMembers | None = None  # the master's members, read once a run

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
        self._masters = MasterMembers(backend, self.config.main.master_region)
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

    def view(
        self, ref: RegionRef, catalogue: Catalogue, log: logging.Logger, runs: Runs | None = None
    ) -> RegionView:
        """``runs`` (a sync): the marked images are classified (glancesync.leftovers), and
        the active copies that failed verification are left out of the status and the
        plan, so that their masters are uploaded again once they are deleted."""
        target = self.config.targets[ref.target]
        tenant_id, images = self._prefetch.take(ref) or self._listing(ref)
        wanted, warnings = synchronisable(catalogue, target)
        marked = Marked([], frozenset())
        if runs is not None:
            clock = self._clock(ref)
            marked = classify(images, tenant_id, runs, target.leftover_age, clock, wanted)
            replaced = marked.replaced()
            images = [image for image in images if image.id not in replaced]
        kept, more = region_map(images, wanted, target, tenant_id, ref.full)
        masters = self._masters or MasterMembers(
            self.backends["master"], self.config.main.master_region
        )
        members, shared = member_plans(
            masters, self.backends[ref.target], ref.name, wanted, kept, target
        )
        for warning in warnings + more + shared:
            log.warning(warning)
        status = region_status(wanted, kept, target, catalogue.unresolved, members)
        in_stores: tuple[str, ...] = ()
        if stores.configured(target):
            available = self.backends[ref.target].stores(ref.name)
            in_stores = stores.wanted_stores(ref.full, target, available)
            status = stores.with_stores(status, in_stores)
            for line in stores.store_lines(ref.full, status):
                log.info(line)
        return RegionView(ref, target, tenant_id, images, wanted, status, marked, in_stores)

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
        cancel = None if should_cancel is None else (lambda ref: should_cancel())
        options = SyncOptions(dry_run, progress=progress, cancel=cancel, runs=runs)
        try:
            catalogue = catalogue or self.load_master(log, prefetch=[ref])
        except BackendError as exc:
            return _failed(ref, exc, log)
        prepared = self.prepare(ref, catalogue, log, options)
        if prepared.failure is not None:
            return prepared.failure
        try:
            return self.execute(prepared, options, self.source_for)
        finally:
            prepared.unlock()

    def sync_regions(
        self,
        regions: list[str | RegionRef],
        options: SyncOptions | None = None,
        catalogue: Catalogue | None = None,
    ) -> list[RegionResult]:
        """Sync several regions, in batches of ``options.max_workers`` regions run in
        threads (glancesync.batch).

        The master is listed once (unless ``catalogue`` is given). Results come in
        ``regions`` order; failures are reported in them, never raised (6.6).
        """
        options = options or SyncOptions()
        refs = [self._ref(region) for region in regions]
        first = refs[: max(1, options.max_workers)]
        try:
            catalogue = catalogue or self.load_master(self.log, prefetch=first)
        except BackendError as exc:
            return [
                options.finish(ref, _failed(ref, exc, options.log_of(ref, self.log)))
                for ref in refs
            ]
        return run_batches(self, refs, catalogue, options)

    # -- syncing internals ---------------------------------------------------------------
    def _ref(self, region: str | RegionRef) -> RegionRef:
        return region if isinstance(region, RegionRef) else self.parse(region)

    def prepare(
        self, ref: RegionRef, catalogue: Catalogue, log: logging.Logger, options: SyncOptions
    ) -> Prepared:
        """Lock (real syncs), view and plan of a region; a backend error, a busy lock or a
        cancel makes it a failed result instead, with the lock given back."""
        lock = None
        try:
            lock = None if options.dry_run else self._lock(ref, options.cancel_of(ref))
            view = self.view(ref, catalogue, log, self._runs(options))
            plan = self.plan(view, catalogue, log)
            transfer = self._transfer(ref, view.target, log, view)
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
        return Prepared(ref, log, view, plan, marked=view.marked, lock=lock, transfer=transfer)

    def _lock(self, ref: RegionRef, should_cancel: Callable[[], bool] | None) -> RegionLock:
        """The region's lock file, taken (RegionBusy after ``lock_wait``). A prefetched
        listing started before another run gave the lock back is dropped: it may miss
        what that run did."""
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

    def execute(
        self, prepared: Prepared, options: SyncOptions, source_for: SourceFor
    ) -> RegionResult:
        """Run a prepared region's plan (its leftovers deleted first, real syncs only)."""
        ref, view, plan = prepared.ref, prepared.view, prepared.plan
        assert view is not None and plan is not None
        backend = self._region_backend(view, prepared.log)
        runs = self._runs(options)
        if not options.dry_run:
            marked, log = prepared.marked, prepared.log
            unmark_verified(backend, ref.name, ref.full, marked.verified, log)
            delete_leftovers(backend, ref.name, ref.full, marked.leftovers, log)
        executor = Executor(
            plan,
            backend,
            ref.name,
            view.status.region_map,
            prepared.log,
            options.dry_run,
            source_for,
            options.progress,
            options.cancel_of(ref),
            run_id=runs.run_id,
            busy=prepared.marked.busy,
            busy_now=self._busy_now(ref, view, runs),
            listing=view.images,
            tenant_id=view.tenant_id,
            keep_old=view.target.keep_old,
            spool_dir=self.config.main.spool_dir or None,
            transfer=prepared.transfer or self._transfer(ref, view.target, prepared.log, view),
        )
        return executor.run()

    def _region_backend(self, view: RegionView, log: logging.Logger) -> Backend:
        """The region's backend, or its ``StoreCopies`` when the target names stores."""
        lacking = frozenset(
            s.region_image.id for s in view.status.images if s.missing_stores and s.region_image
        )
        backend = self.backends[view.ref.target]
        timeout = view.target.import_timeout
        return storecopies.for_region(backend, view.ref.full, view.stores, lacking, log, timeout)

    def _transfer(
        self, ref: RegionRef, target: Target, log: logging.Logger, view: RegionView | None = None
    ) -> RegionTransfer:
        """How this region's copies travel (glancesync.transfer): the region's Glance is
        asked for its import methods only when ``auto`` needs to know."""
        backend = self._region_backend(view, log) if view else self.backends[ref.target]
        advertised = None
        if needs_probe(ref.target, target.transfer):
            advertised = backend.can_import(ref.name)
        path = region_path(ref.target, target.transfer, advertised)
        if path == PROXY and target.transfer != PROXY:
            log.info(f"{ref.full}: copies go through this host (transfer = {target.transfer})")
        importer = functools.partial(
            backend.import_copy,
            ref.name,
            source_region=self.config.main.master_region,
            timeout=target.import_timeout,
        )
        shown = target.transfer != PROXY
        return RegionTransfer(path, falls_back(target.transfer), importer, shown)

    def _runs(self, options: SyncOptions) -> Runs:
        return options.runs or self.runs

    def _busy_now(self, ref: RegionRef, view: RegionView, runs: Runs) -> Callable[[str], bool]:
        """Whether another run started uploading an image since the listing (a run of
        another host, or one that planned before this one): asked before each upload
        (``images_named``: one name listed)."""
        named = self.backends[ref.target].images_named
        age, clock = view.target.leftover_age, self._clock(ref)
        return lambda name: (
            name in classify(named(ref.name, name), view.tenant_id, runs, age, clock).busy
        )

    def _clock(self, ref: RegionRef) -> Callable[[], datetime | None]:
        """The region's clock (Glance's ``Date``; None when unknown), for the age of
        marked images: created and judged by the same clock, whatever this host's."""
        return functools.partial(self.backends[ref.target].server_now, ref.name)

    def source_for(self, master: Image) -> ImageSource:
        """An own read of a master image (not shared with other regions)."""
        return self.backends["master"].image_source(self.config.main.master_region, master)


def _default_runs() -> Runs:
    """A library caller that names no run: a new CLI-style run id, and the CLI's test of
    which runs are dead (same host, process gone)."""
    return Runs(is_dead=cli_run_dead)


def _failed(ref: RegionRef, exc: BackendError, log: logging.Logger) -> RegionResult:
    """A region that fails before its executor runs; a cancel (while waiting for the
    region's lock) is logged as the executor logs one."""
    if isinstance(exc, Interrupted):
        log.error(f"{ref.full}: {exc}")
    elif isinstance(exc, Cancelled):
        log.error(f"{ref.full}: sync {exc}")
    else:
        log.error(str(exc))
    return RegionResult(ref.full, failed=True, error=str(exc), error_kind=exc.kind)
