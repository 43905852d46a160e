"""The per-run coordinator: which regions share which master image, who starts its
broadcast and who joins it, and how many expected regions a paused reader waits for
(see ``glancesync.fanout``)."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from glancesync import regionlog
from glancesync.backends.base import ImageSource
from glancesync.fanout.broadcast import (
    DEFAULT_BUFFER_BYTES,
    DEFAULT_JOIN_TIMEOUT,
    DEFAULT_SPOOL_BYTES,
    Broadcast,
    clone_error,
)
from glancesync.fanout.consumer import Consumer
from glancesync.image import Image

OpenSource = Callable[[Image], ImageSource]


@dataclass(frozen=True)
class Starts:
    """The region is the first to ask: it opens the master for everyone."""


@dataclass(frozen=True)
class Joined:
    """The region reads the broadcast in progress, from byte 0."""

    consumer: Consumer


@dataclass(frozen=True)
class Missed:
    """The spool no longer holds the start (or there is none): the region reads alone."""


Joining = Starts | Joined | Missed


class _CountingSource:
    """An independent read of the master, counted in the fan-out statistics."""

    def __init__(self, source: ImageSource, count: Callable[[int], None]):
        self.size = source.size
        self._source = source
        self._count = count

    def chunks(self) -> Iterator[bytes]:
        for chunk in self._source.chunks():
            self._count(len(chunk))
            yield chunk


@dataclass
class FanOutStats:
    """What the master was asked for during a run."""

    reads: dict[str, int]  # master image id -> reads of its data (broadcasts + own reads)
    fallbacks: int  # own reads of a shared image (late, detached or unexpected region)
    bytes_read: int  # bytes read from the master


@dataclass
class _Shared:
    """A master image that several regions of the run upload."""

    expected: set[str]
    joined: set[str] = field(default_factory=set)
    starting: bool = False
    broadcast: Broadcast | None = None
    error: Exception | None = None
    unspooled: bool = False  # the spool could not be created: every region reads alone
    # the joined regions' logs: the reader's warnings (retries, resumes) concern each one,
    # including regions that join later (the list grows; regionlog reads it as it is)
    loggers: regionlog.SharedLog = field(default_factory=regionlog.SharedLog)


class FanOut:
    """Per-run coordinator: which regions share which master image, and their broadcasts.

    Thread-safe; every region calls it from its own thread. Lock order: the FanOut's lock,
    then a broadcast's (a broadcast never calls back).
    """

    def __init__(
        self,
        open_source: OpenSource,
        join_timeout: float = DEFAULT_JOIN_TIMEOUT,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        spool_bytes: int = DEFAULT_SPOOL_BYTES,
        spool_dir: str | None = None,
    ):
        self._open = open_source
        self.join_timeout = join_timeout
        self.buffer_bytes = buffer_bytes
        self.spool_bytes = spool_bytes
        self.spool_dir = spool_dir
        self._cond = threading.Condition()
        self._shared: dict[str, _Shared] = {}
        self._withdrawn: set[str] = set()
        self._order: dict[str, dict[str, int]] = {}  # region -> image id -> its upload rank
        self._position: dict[str, str] = {}  # the last image each region asked for
        self._current: dict[str, Consumer] = {}
        self._reads: Counter[str] = Counter()
        self._fallbacks = 0
        self._own_bytes = 0
        self._broadcasts: list[Broadcast] = []

    # -- the run's shape ---------------------------------------------------------------
    def expect(self, image_id: str, regions: Iterable[str]) -> None:
        """``regions`` will upload master image ``image_id`` in this run."""
        with self._cond:
            self._shared.setdefault(image_id, _Shared(set())).expected.update(regions)
            self._update_pending()

    def plan(self, region: str, image_ids: Iterable[str]) -> None:
        """``region`` uploads these master images in this order (its plan's): an image
        before the last one it asked for is one it will not ask for any more."""
        with self._cond:
            self._order[region] = {image_id: rank for rank, image_id in enumerate(image_ids)}
            self._update_pending()

    def shares(self, image_id: str) -> bool:
        with self._cond:
            return image_id in self._shared

    def withdraw(self, region: str) -> None:
        """``region`` uploads nothing more in this run (its sync ended, well or not)."""
        with self._cond:
            self._withdrawn.add(region)
            consumer = self._current.pop(region, None)
            self._update_pending()
        if consumer is not None:
            consumer.close()

    # -- sources -----------------------------------------------------------------------
    def source_for(self, region: str, master: Image) -> ImageSource:
        """The data of ``master`` for ``region``'s upload: a share of the image's broadcast
        (started now, or joined in progress), or an own read when the image is not shared
        or its spool no longer holds the start.

        Raises the error of opening the master when the broadcast could not start.
        """
        self._release(region)
        with self._cond:
            entry = self._shared.get(master.id)
            shared = entry is not None and region in entry.expected
            if entry is None or not shared or region in self._withdrawn:
                self._fallbacks += entry is not None
                self._position[region] = master.id
                self._update_pending()
                entry = None
            else:
                joined = self._join(entry, region, master)
        if entry is None:
            return self._own_read(master)
        if isinstance(joined, Starts):
            return self._start(entry, region, master)
        if isinstance(joined, Missed):
            return self._own_read(master, fallback=True)
        return self._hold(region, joined.consumer)

    def stats(self) -> FanOutStats:
        with self._cond:
            broadcast_bytes = sum(b.bytes_read for b in self._broadcasts)
            return FanOutStats(
                dict(self._reads), self._fallbacks, broadcast_bytes + self._own_bytes
            )

    # -- internals ---------------------------------------------------------------------
    def _release(self, region: str) -> None:
        """Asking for a new source means the previous one is finished with."""
        with self._cond:
            consumer = self._current.pop(region, None)
        if consumer is not None:
            consumer.close()

    def _update_pending(self) -> None:
        """Lock held. Tell each broadcast how many expected regions may still join it: not
        joined, not withdrawn, not queued for a worker, not past the image in the order."""
        for image_id, entry in self._shared.items():
            if entry.broadcast is None:
                continue
            pending = [
                region
                for region in entry.expected - entry.joined - self._withdrawn
                if not self._past(region, image_id)
            ]
            entry.broadcast.set_pending(len(pending))
        self._cond.notify_all()

    def _past(self, region: str, image_id: str) -> bool:
        """Lock held. Whether ``region`` already asked for an image its plan uploads after
        ``image_id`` (so it will not ask for ``image_id``); unknown order: not past."""
        order = self._order.get(region, {})
        last = self._position.get(region)
        if last is None or image_id not in order or last not in order:
            return False
        return order[last] >= order[image_id]

    def _start(self, entry: _Shared, region: str, master: Image) -> ImageSource:
        """Open the master once and start the reader, with ``region`` as its first
        consumer; outside the lock (opening may be slow)."""
        error, broadcast = None, None
        try:
            source = self._open(master)
        except Exception as exc:  # noqa: BLE001 - every joined region reports it
            error = exc
        else:
            # no spool (spool_dir missing or read-only): each region reads on its own
            with contextlib.suppress(OSError):
                broadcast = Broadcast(
                    source,
                    1,
                    self.buffer_bytes,
                    name=f"fanout-{master.name}",
                    reopen=lambda: self._own_read(master, fallback=True),
                    hash_algo=master.os_hash_algo,
                    spool_bytes=self.spool_bytes,
                    spool_dir=self.spool_dir,
                    join_timeout=self.join_timeout,
                    context=regionlog.shared_by(entry.loggers),
                )
        with self._cond:
            entry.error, entry.broadcast, entry.starting = error, broadcast, False
            entry.unspooled = error is None and broadcast is None
            if broadcast is not None:
                self._broadcasts.append(broadcast)
                self._reads[master.id] += 1
            self._update_pending()
        if error is not None:
            raise error
        if broadcast is None:
            return self._own_read(master, fallback=True)
        broadcast.start()
        return self._hold(region, broadcast.consumers[0])

    def _join(self, entry: _Shared, region: str, master: Image) -> Joining:
        """Lock held. How ``region`` takes part in the image's broadcast: it starts it,
        joins it in progress, or missed it (too far on, no spool); raises its open error."""
        while entry.starting:
            self._cond.wait()
        if entry.error is not None:
            raise clone_error(entry.error) from entry.error
        outcome: Joining = Missed()
        if entry.broadcast is not None:
            consumer = entry.broadcast.join()
            outcome = Missed() if consumer is None else Joined(consumer)
        elif not entry.unspooled:
            entry.starting = True
            outcome = Starts()
        entry.joined.add(region)
        entry.loggers.join(regionlog.current())
        self._position[region] = master.id
        self._update_pending()
        return outcome

    def _hold(self, region: str, consumer: Consumer) -> Consumer:
        with self._cond:
            if region in self._withdrawn:  # withdrew meanwhile: do not hold the reader
                consumer.close()
            else:
                self._current[region] = consumer
        return consumer

    def _own_read(self, master: Image, fallback: bool = False) -> ImageSource:
        source = self._open(master)
        with self._cond:
            self._reads[master.id] += 1
            self._fallbacks += 1 if fallback else 0
        return _CountingSource(source, self._count)

    def _count(self, n: int) -> None:
        with self._cond:
            self._own_bytes += n
