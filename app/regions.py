"""The service's link to the core library: one GlanceSync per process and its region list.

The core configuration is read once, on first use, so that ``manage.py db upgrade`` works
without it. The region list comes from the targets' catalogs and is refreshed every few
minutes (reference 10.3): regions added to Keystone appear without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask, current_app

from app.errors import ApiError, unavailable
from glancesync.config import load_config
from glancesync.engine import GlanceSync
from glancesync.errors import BackendError, ConfigError
from glancesync.regions import RegionRef

log = logging.getLogger("GlanceSync-API")
EXTENSION = "glancesync.core"
REFRESH_SECONDS = 300.0


class Core:
    """Lazily built GlanceSync plus the known regions, refreshed every ``refresh`` seconds."""

    def __init__(
        self,
        config_file: str | None = None,
        refresh: float = REFRESH_SECONDS,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config_file = config_file
        self.refresh = refresh
        self.timer = timer
        self._gs: GlanceSync | None = None
        self._regions: dict[str, list[str]] = {}  # per target
        self._loaded_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def _load(self) -> GlanceSync:
        """The core config: ``config_file`` when set (tests), else the core's own lookup (2.1)."""
        if self.config_file:
            with open(self.config_file, encoding="utf-8") as stream:
                config = load_config(text=stream.read(), path=self.config_file)
        else:
            config = load_config()
        for warning in config.warnings:
            log.warning(warning)
        return GlanceSync(config)

    def glancesync(self) -> GlanceSync:
        with self._lock:
            if self._gs is None:
                try:
                    self._gs = self._load()
                except (ConfigError, OSError) as exc:
                    # The message may quote settings: it goes to the log, not to the client.
                    log.error("Cannot load the GlanceSync configuration: %s", exc)
                    raise ApiError(
                        503, "The synchronisation configuration of the service is invalid"
                    ) from None
            return self._gs

    def target_regions(self, target: str) -> list[str]:
        """The full region names of one target, refreshed on their own: a target whose
        Keystone is down makes only its own regions unavailable (503); a failed refresh
        keeps the previous list."""
        gs = self.glancesync()
        with self._lock:
            known = self._regions.get(target)
            if known is not None and self.timer() - self._loaded_at.get(target, 0) < self.refresh:
                return list(known)
            try:
                names = gs.backends[target].regions()
                known = self._regions[target] = [RegionRef(target, r).full for r in names]
                self._loaded_at[target] = self.timer()
            except BackendError as exc:
                if known is None:
                    raise unavailable(f"The Keystone of target {target}", exc) from None
                log.warning("Cannot refresh the region list of target %s: %s", target, exc)
            return list(known)

    def regions(self) -> list[str]:
        """Every known full region name, of the targets whose list can be read."""
        found: list[str] = []
        for target in self.glancesync().backends:
            try:
                found += self.target_regions(target)
            except ApiError:
                continue
        return found

    def resolve(self, name: str) -> str:
        """The full name of a known region (``master:<r>`` is ``<r>``), else 410."""
        gs = self.glancesync()
        try:
            ref = gs.parse(name)
        except ConfigError:
            raise ApiError(410) from None
        if ref.target not in gs.backends or ref.full not in self.target_regions(ref.target):
            raise ApiError(410)
        return ref.full


def init_core(app: Flask, core: Core | None = None) -> Core:
    core = core or Core(app.config.get("CORE_CONFIG_FILE"), app.config["REGIONS_REFRESH"])
    app.extensions[EXTENSION] = core
    return core


def core() -> Core:
    return current_app.extensions[EXTENSION]
