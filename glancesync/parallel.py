"""``--parallel``: regions synchronised by threads, one log file per region (reference 7.5).

Threads, not processes, so that one read of a master image can feed several regions'
uploads at once (``glancesync.fanout``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

from glancesync.batch import SyncOptions
from glancesync.engine import LOGGER_NAME, GlanceSync
from glancesync.errors import BackendError, UsageError
from glancesync.filenames import file_part
from glancesync.interrupts import Stop
from glancesync.leftovers import Runs
from glancesync.progress import progress_factory
from glancesync.regions import RegionRef
from glancesync.result import RegionResult


def make_run_folder(parent: str = ".") -> str:
    """``sync_YYYYMMDD_HHMMSS`` (local time), with ``_1``, ``_2``… when it exists."""
    base = os.path.join(parent, time.strftime("sync_%Y%m%d_%H%M%S"))
    folder, n = base, 0
    while True:
        try:
            os.mkdir(folder)
            return folder
        except FileExistsError:
            n += 1
            folder = f"{base}_{n}"
        except OSError as exc:
            raise UsageError(f"cannot create the run folder {folder}: {exc.strerror}") from None


def region_logger(folder: str, region: str, index: int) -> logging.Logger:
    """A logger writing only to ``<folder>/<region>.txt``, message only."""
    log = logging.getLogger(f"{LOGGER_NAME}.parallel.{index}")
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.INFO)
    name = os.path.join(folder, f"{file_part(region)}.txt")
    handler = logging.FileHandler(name, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    return log


def close_logger(log: logging.Logger) -> None:
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)


def run_parallel(
    gs: GlanceSync,
    regions: list[RegionRef],
    dry_run: bool,
    log: logging.Logger,
    stop: Stop | None = None,
    runs: Runs | None = None,
) -> int:
    """Sync ``regions`` in threads, in batches of ``max_children``, with one log file each;
    regions of a batch uploading the same master image share one read of it
    (``sync_regions``). ``stop`` (the signal flag) ends every region between chunks and
    starts no further batch."""
    folder = make_run_folder()
    batch = gs.config.main.max_children
    try:
        catalogue = gs.load_master(log, prefetch=regions[:batch])
    except BackendError as exc:
        log.error(str(exc))
        return 1
    loggers = _RegionLoggers(folder)
    options = SyncOptions(
        dry_run,
        max_workers=batch,
        log_for=loggers.open,
        progress=progress_factory(sys.stderr),
        cancel=None if stop is None else (lambda ref: stop()),
        on_done=loggers.finished,
        runs=runs,
    )
    results = gs.sync_regions(regions, options, catalogue)
    print("All is done.", flush=True)
    return 1 if any(r.failed for r in results) else 0


class _RegionLoggers:
    """The per-region log files of a run, closed and announced as each region ends."""

    def __init__(self, folder: str):
        self.folder = folder
        self._open: dict[str, logging.Logger] = {}
        self._count = 0  # logger names must stay unique while files are open
        self._lock = threading.Lock()

    def open(self, ref: RegionRef) -> logging.Logger:
        with self._lock:
            log = region_logger(self.folder, ref.full, self._count)
            self._count += 1
            self._open[ref.full] = log
            return log

    def finished(self, ref: RegionRef, result: RegionResult) -> None:
        with self._lock:
            log = self._open.pop(ref.full, None)
            if log is None:
                return  # not started (the run was stopped first): it has no log
            close_logger(log)
            suffix = " with errors" if result.failed else ""
            print(f"Region {ref.full} has finished{suffix}", flush=True)
