"""Upload progress: one line per region on a terminal, and a per-image record for the service.

Both are progress factories of ``glancesync.executor`` (``ProgressFactory``): called as each
upload starts, with the optional ``planned``/``ended`` hooks the executor calls per region.

* :class:`RegionLines` (the CLI): one tqdm line per region - bytes done/total of the
  region's uploads, rate and the image being sent - instead of one bar per upload, so a
  ``--parallel`` run over 20 regions stays readable; a sequential run shows the line of
  the current region only, because a line is freed when its region ends. tqdm is used
  because it is maintained, thread-safe with several bars, and already computes rate and
  ETA; log files never see it (no factory unless the stream is a terminal).
* :class:`UploadTracker` (the REST service): bytes done/total, smoothed rate and state of
  every upload of a task, as a JSON-able ``snapshot()`` that the task runner stores in the
  database at most once per interval, because another server process may answer the GET.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from glancesync.backends.base import ProgressCallback

UPLOADING, DONE, FAILED = "uploading", "done", "failed"
# Weight of the newest sample in the smoothed rate, and the shortest span a sample covers
# (shorter ones are noise: chunks arrive in bursts).
RATE_WEIGHT = 0.3
RATE_SPAN = 0.5

Clock = Callable[[], float]


# -- the service's record ---------------------------------------------------------------
@dataclass
class _Upload:
    """One upload of one image to one region."""

    name: str
    region: str
    total: int
    started: float
    done: int = 0
    rate: float = 0.0
    state: str = UPLOADING
    sample_at: float = 0.0
    sample_bytes: int = 0
    ended_at: float | None = None

    def add(self, nbytes: int, now: float) -> None:
        self.done += nbytes
        span = now - self.sample_at
        if span >= RATE_SPAN:
            current = (self.done - self.sample_bytes) / span
            self.rate = current if not self.rate else smooth(self.rate, current)
            self.sample_at, self.sample_bytes = now, self.done

    def end(self, state: str, now: float) -> None:
        """A finished upload shows its average rate: the last samples say little."""
        if self.state != UPLOADING:
            return
        self.state, self.ended_at = state, now
        elapsed = now - self.started
        if elapsed > 0 and self.done:
            self.rate = self.done / elapsed

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "region": self.region,
            "bytesDone": self.done,
            "bytesTotal": self.total,
            "rate": round(self.rate, 1),
            "state": self.state,
        }


def smooth(previous: float, current: float, weight: float = RATE_WEIGHT) -> float:
    """Exponentially weighted mean: steady enough to read, quick enough to follow a stall."""
    return weight * current + (1 - weight) * previous


@dataclass
class UploadTracker:
    """Thread-safe progress of one task's uploads (every region of it).

    ``version`` grows with every change, so a writer can skip unchanged snapshots.
    """

    clock: Clock = time.monotonic
    version: int = 0
    _uploads: list[_Upload] = field(default_factory=list)
    _planned: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, region: str, name: str, size: int) -> ProgressCallback:
        now = self.clock()
        upload = _Upload(name, region, size, started=now, sample_at=now)
        with self._lock:
            for earlier in self._uploads:
                if earlier.region == region:
                    earlier.end(DONE, now)  # a region runs its actions one at a time
            self._uploads.append(upload)
            self.version += 1

        def advance(nbytes: int) -> None:
            with self._lock:
                upload.add(nbytes, self.clock())
                self.version += 1

        return advance

    def planned(self, region: str, nbytes: int) -> None:
        with self._lock:
            self._planned[region] = nbytes
            self.version += 1

    def ended(self, region: str, failed_image: str | None) -> None:
        """The region is done: its failed upload (if any) is ``failed``, the rest ``done``."""
        now = self.clock()
        with self._lock:
            for upload in self._uploads:
                if upload.region == region:
                    upload.end(FAILED if upload.name == failed_image else DONE, now)
            self.version += 1

    def fail_unfinished(self) -> None:
        """The sync stopped outside the executor (an exception): nothing still runs."""
        now = self.clock()
        with self._lock:
            for upload in self._uploads:
                upload.end(FAILED, now)
            self.version += 1

    def snapshot(self) -> dict[str, Any]:
        """``{"images": [...], "bytesDone", "bytesTotal"}``; the total is the planned bytes
        of every region (so it is known before the first upload ends), or the sizes of the
        uploads seen when a region announced no plan."""
        with self._lock:
            images = [upload.as_dict() for upload in self._uploads]
            unplanned = sum(u.total for u in self._uploads if u.region not in self._planned)
            total = sum(self._planned.values()) + unplanned
        return {
            "images": images,
            "bytesDone": sum(image["bytesDone"] for image in images),
            "bytesTotal": total,
        }


# -- the CLI's lines --------------------------------------------------------------------
class _Line:
    """One region's tqdm line."""

    def __init__(self, bar: Any, slot: int):
        self.bar, self.slot = bar, slot
        self.planned = False


class RegionLines:
    """One terminal line per region; see the module docstring."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self._lines: dict[str, _Line] = {}
        self._lock = threading.Lock()

    def planned(self, region: str, nbytes: int) -> None:
        if nbytes <= 0:
            return
        with self._lock:
            line = self._line(region)
            line.bar.total, line.planned = nbytes, True
            line.bar.refresh()

    def __call__(self, region: str, name: str, size: int) -> ProgressCallback:
        with self._lock:
            line = self._line(region)
            if not line.planned:  # no plan announced: the total grows upload by upload
                line.bar.total = (line.bar.total or 0) + size
            line.bar.set_description_str(f"{region}: {name}", refresh=True)

        def advance(nbytes: int) -> None:
            with self._lock:
                line.bar.update(nbytes)

        return advance

    def ended(self, region: str, failed_image: str | None) -> None:
        """Free the region's line (its slot is reused by the next region to start)."""
        with self._lock:
            line = self._lines.pop(region, None)
        if line is not None:
            line.bar.close()

    def _line(self, region: str) -> _Line:
        """The region's line, opened in the lowest free slot. Caller holds the lock."""
        line = self._lines.get(region)
        if line is None:
            from tqdm import tqdm

            taken = {other.slot for other in self._lines.values()}
            slot = next(i for i in range(len(taken) + 1) if i not in taken)
            bar = tqdm(
                total=0,
                desc=region,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=self.stream,
                leave=False,
                position=slot,
            )
            line = self._lines[region] = _Line(bar, slot)
        return line


def progress_factory(stream: TextIO) -> RegionLines | None:
    """Per-region progress lines on ``stream``, or None when it is not a terminal."""
    if not hasattr(stream, "isatty") or not stream.isatty():
        return None
    return RegionLines(stream)
