"""``--parallel``: regions synchronised by threads, one log file per region (D6).

Threads, not processes, so that a later stage can feed one read of a master image to
several regions' uploads at once.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from glancesync.engine import LOGGER_NAME, GlanceSync
from glancesync.errors import BackendError
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


def region_logger(folder: str, region: str, index: int) -> logging.Logger:
    """A logger writing only to ``<folder>/<region>.txt``, message only."""
    log = logging.getLogger(f"{LOGGER_NAME}.parallel.{index}")
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.FileHandler(os.path.join(folder, f"{region}.txt"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    return log


def close_logger(log: logging.Logger) -> None:
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)


def run_parallel(
    gs: GlanceSync, regions: list[RegionRef], dry_run: bool, log: logging.Logger
) -> int:
    folder = make_run_folder()
    try:
        catalogue = gs.load_master(log)
    except BackendError as exc:
        log.error(str(exc))
        return 1
    print_lock = threading.Lock()
    progress = progress_factory(sys.stderr)

    def one(index: int, ref: RegionRef) -> RegionResult:
        region_log = region_logger(folder, ref.full, index)
        try:
            result = gs.sync_region(ref, dry_run, catalogue, region_log, progress)
        finally:
            close_logger(region_log)
        suffix = " with errors" if result.failed else ""
        with print_lock:
            print(f"Region {ref.full} has finished{suffix}", flush=True)
        return result

    workers = max(1, gs.config.main.max_children)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="region") as pool:
        results = list(pool.map(one, range(len(regions)), regions))
    print("All is done.", flush=True)
    return 1 if any(r.failed for r in results) else 0
