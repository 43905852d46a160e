"""The service's link to the core library: one GlanceSync per process and its region list.

The core configuration is read once, on first use, so that ``manage.py db upgrade`` works
without it. The region list comes from the targets' catalogs and is refreshed every few
minutes (BEHAVIOUR.md 10.3): regions added to Keystone appear without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask, current_app

from app.errors import ApiError
from glancesync.config import load_config
from glancesync.engine import GlanceSync
from glancesync.errors import BackendError, ConfigError

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
        self._regions: list[str] | None = None
        self._loaded_at = 0.0
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

    def regions(self) -> list[str]:
        """Every known full region name; a failed refresh keeps the previous list."""
        gs = self.glancesync()
        with self._lock:
            fresh = self._regions is not None and self.timer() - self._loaded_at < self.refresh
            if fresh:
                return list(self._regions or ())
            try:
                self._regions = gs.known_regions()
                self._loaded_at = self.timer()
            except BackendError as exc:
                log.warning("Cannot refresh the region list: %s", exc)
                if self._regions is None:
                    raise ApiError(503, f"Cannot read the region list: {exc}") from None
            return list(self._regions)

    def resolve(self, name: str) -> str:
        """The full name of a known region (``master:<r>`` is ``<r>``), else 410."""
        gs = self.glancesync()
        try:
            full = gs.full_name(name)
        except ConfigError:
            raise ApiError(410) from None
        if full not in self.regions():
            raise ApiError(410)
        return full


def init_core(app: Flask, core: Core | None = None) -> Core:
    core = core or Core(app.config.get("CORE_CONFIG_FILE"), app.config["REGIONS_REFRESH"])
    app.extensions[EXTENSION] = core
    return core


def core() -> Core:
    return current_app.extensions[EXTENSION]
