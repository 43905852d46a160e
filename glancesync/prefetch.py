"""Region listings started ahead of time, in threads, and handed to the next view of each.

Used by ``GlanceSync.load_master``: the master and the regions about to be synced are
listed at once instead of one after the other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from glancesync.regions import RegionRef

T = TypeVar("T")
MAX_THREADS = 8


class Prefetch(Generic[T]):
    """Pending results by full region name; each is taken at most once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, Future[T]] = {}
        self._started: dict[str, float] = {}

    def start(self, refs: list[RegionRef], fetch: Callable[[RegionRef], T]) -> None:
        """Run ``fetch(ref)`` in threads for the refs that have nothing pending yet."""
        with self._lock:
            new = [ref for ref in refs if ref.full not in self._pending]
            if not new:
                return
            pool = ThreadPoolExecutor(min(len(new), MAX_THREADS), "prefetch")
            for ref in new:
                self._started[ref.full] = time.time()
                self._pending[ref.full] = pool.submit(fetch, ref)
        pool.shutdown(wait=False)  # the threads end with their last listing

    def take(self, ref: RegionRef) -> T | None:
        """The prefetched result of ``ref`` (waiting for it; its error is raised), or None
        when nothing was prefetched for it."""
        with self._lock:
            future = self._pending.pop(ref.full, None)
            self._started.pop(ref.full, None)
        return future.result() if future is not None else None

    def started(self, ref: RegionRef) -> float | None:
        """When the pending fetch of ``ref`` was started (wall clock), or None."""
        with self._lock:
            return self._started.get(ref.full) if ref.full in self._pending else None

    def drop(self, refs: list[RegionRef]) -> None:
        """Forget what was started for ``refs`` (results and errors are discarded)."""
        with self._lock:
            for ref in refs:
                self._pending.pop(ref.full, None)
                self._started.pop(ref.full, None)
