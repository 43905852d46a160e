"""The library entry point: one object that knows the configuration and the backends.

The CLI and the REST service both go through ``GlanceSync``; it turns region names
into backend calls and runs select -> status -> plan -> execute for one region.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from glancesync import report
from glancesync.backends.base import Backend
from glancesync.config import Config, Target
from glancesync.errors import BackendError
from glancesync.executor import Executor, ProgressFactory
from glancesync.image import Image
from glancesync.obsolete import obsolete_updates
from glancesync.planner import Plan, plan_region
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

    # -- regions -------------------------------------------------------------------------
    @property
    def master_region(self) -> RegionRef:
        return RegionRef("master", self.config.main.master_region)

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
    def load_master(self, log: logging.Logger | None = None) -> Catalogue:
        """List the master region once and reduce it to the catalogue (3.1)."""
        log = log or self.log
        backend = self.backends["master"]
        images = backend.list_images(self.config.main.master_region)
        catalogue = master_catalogue(images, backend.tenant_id())
        for warning in catalogue.warnings:
            log.warning(warning)
        return catalogue

    def view(self, ref: RegionRef, catalogue: Catalogue, log: logging.Logger) -> RegionView:
        target = self.config.targets[ref.target]
        backend = self.backends[ref.target]
        tenant_id = backend.tenant_id()
        images = backend.list_images(ref.name)
        wanted, warnings = synchronisable(catalogue, target)
        kept, more = region_map(images, wanted, target, tenant_id, ref.full)
        for warning in warnings + more:
            log.warning(warning)
        status = region_status(wanted, kept, target, catalogue.unresolved)
        return RegionView(ref, target, tenant_id, images, wanted, status)

    def region_statuses(
        self, region: str | RegionRef, catalogue: Catalogue | None = None
    ) -> RegionStatus:
        ref = region if isinstance(region, RegionRef) else self.parse(region)
        catalogue = catalogue or self.load_master()
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
    ) -> RegionResult:
        """Sync one region; failures are reported in the result, never raised (6.6)."""
        log = log or self.log
        ref = region if isinstance(region, RegionRef) else self.parse(region)
        try:
            catalogue = catalogue or self.load_master(log)
            view = self.view(ref, catalogue, log)
            plan = self.plan(view, catalogue, log)
        except BackendError as exc:
            log.error(str(exc))
            return RegionResult(ref.full, failed=True, error=str(exc))
        executor = Executor(
            plan,
            self.backends[ref.target],
            ref.name,
            view.status.region_map,
            log,
            dry_run,
            self._source_for,
            progress,
            should_cancel,
        )
        return executor.run()

    def _source_for(self, master: Image):
        return self.backends["master"].image_source(self.config.main.master_region, master)
