"""Fan-out: one read of a master image feeds every region of the run that uploads it,
each region at its own speed.

When several regions of one run (``--parallel``, ``GlanceSync.sync_regions``, a service
fan-out group) need the same master image, reading it once per region multiplies the
load on the master (its disk, its Glance API, its WAN link) by the number of regions.
Here the master data is read ONCE by a :class:`Broadcast` reader thread.

Design (issue 14, measured in ``bench/uneven.py``; README "Performance"):

* **A spool on local disk.** The reader writes what it reads into a :class:`RingSpool`,
  a nameless file (``O_TMPFILE``: nothing is left behind by a crash) in ``spool_dir``
  (default: the system's temporary folder) holding at most ``spool_max_mb``. Every
  consumer (one region's upload) reads the spool at its own offset, one source chunk at
  a time; the fresh part of the file is in the page cache, so a region that keeps up
  reads memory, not disk, and the process holds only the chunk in hand (RSS stays flat).
* **The reader runs at the pace of the fastest region**: it reads at most
  ``buffer_bytes`` ahead of the consumer that is furthest on, never waits for the
  others. Before, every consumer had its own bounded buffer and the reader waited for
  the slowest: one region behind a 50 Mbit/s link held every other region to 50 Mbit/s.
* **A laggard is detached past the cap.** When writing the next chunk would overwrite
  spool bytes a consumer has not read yet (it lags by more than the spool's size), that
  consumer is detached: when it next reads, it opens its own read of the master, skips
  what it already has and goes on (its hashes are then its own, over the whole image).
  That costs the master one more read of the image per detached region (counted in
  ``stats()`` as a fallback); a stalled region that never reads again costs nothing
  and fails alone when its upload's data timeout runs out. With the default cap (2 GiB)
  no image under 2 GiB detaches anyone.
* **Joining a read in progress.** A region that asks for a shared image after its read
  started joins it from offset 0 as long as the spool still holds the start (the image
  so far is no larger than the cap): no region waits for another before its upload
  starts. A later region reads the master on its own (a fallback).
* **Lifetime.** While no consumer is attached and expected regions may still join, the
  reader pauses (it does not read for nobody) for at most ``join_timeout``, after which
  those regions read on their own; a region queued behind a busy worker pool
  (``defer``) does not keep it paused. The spool file is closed — its disk space freed —
  once the reader has stopped, no consumer is attached and no expected region may still
  join. A failure of the master read reaches every attached consumer; a spool that
  cannot be written (disk full) detaches every consumer to its own read instead of
  failing the uploads.

Why no waits can deadlock: the reader waits only for the fastest attached consumer to
read (or, with none attached, for a join, bounded by ``join_timeout``); a consumer waits
only for the reader. Uploads never wait for each other, so the order in which regions
reach an image no longer matters.

:class:`FanOut` is the per-run coordinator: the engine tells it which regions upload
which image (``expect``); each region asks for its source (``source_for``), which starts
the image's broadcast or joins it; a region ``withdraw``-s when its sync ends.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import copy
import functools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from glancesync import regionlog
from glancesync.backends.base import ImageSource
from glancesync.backends.glance_data import StreamHashes
from glancesync.image import Image
from glancesync.spool import RingSpool

MIB = 1024 * 1024
DEFAULT_BUFFER_BYTES = 4 * MIB  # read-ahead of the fastest region: four 1 MiB chunks
DEFAULT_SPOOL_BYTES = 2048 * MIB  # the lag past which a region reads the master itself
DEFAULT_JOIN_TIMEOUT = 30.0

OpenSource = Callable[[Image], ImageSource]


@dataclass(frozen=True)
class _Failure:
    """The master read failed; the error is re-raised by every consumer."""

    error: BaseException


_END = object()  # the master read is complete
_START = object()  # this region opens the master for everyone


class ConsumerClosed(Exception):
    """A consumer was read after someone else closed it (its region withdrew)."""


def _clone(error: BaseException) -> BaseException:
    """A copy of ``error`` per consumer, so threads never share one traceback."""
    try:
        return copy.copy(error)
    except Exception:  # noqa: BLE001 - an uncopyable error is still worth raising
        return error


class _ConsumerHashes(StreamHashes):
    """The hashes one consumer's upload is checked with: the reader's, computed once for
    every region, or — once the consumer was detached to its own read of the master — its
    own, over every byte of that read."""

    def __init__(self, shared: StreamHashes):  # no super().__init__: nothing is hashed here
        self.algo = shared.algo
        self._shared = shared
        self._own: StreamHashes | None = None

    def own(self) -> StreamHashes:
        self._own = StreamHashes(self.algo)
        return self._own

    @property
    def md5(self):  # type: ignore[override]
        return (self._own or self._shared).md5

    @property
    def multihash(self):  # type: ignore[override]
        return (self._own or self._shared).multihash


_EVICTED = object()  # the consumer fell behind the spool: it reads the master itself


class Consumer:
    """One upload's share of a broadcast: an ``ImageSource`` reading the spool at its own
    offset. The broadcast is read once, so a second ``chunks()`` call (a retrying backend)
    reads the master again through ``reopen`` rather than failing.

    ``offset``, ``attached``, ``evicted``, ``closed`` and ``fetching`` belong to the
    broadcast's lock.
    """

    def __init__(self, broadcast: Broadcast):
        self.size = broadcast.size
        self._broadcast = broadcast
        self.offset = 0
        self.attached = True
        self.evicted = False
        self.closed = False
        self.fetching = False
        self._used = False
        shared = broadcast.hashes
        self.hashes = _ConsumerHashes(shared) if shared is not None else None

    @property
    def detached(self) -> bool:
        return not self.attached

    def chunks(self) -> Iterator[bytes]:
        if self._used:
            if self._broadcast.reopen is None:
                raise RuntimeError("a fan-out consumer can be read only once")
            return self._broadcast.reopen().chunks()
        self._used = True
        return _Stream(self._read(), self.hashes)

    def _read(self) -> Iterator[bytes]:
        broadcast = self._broadcast
        try:
            while True:
                step = broadcast._next(self)
                if step is None:
                    return
                data = None if step is _EVICTED else broadcast._fetch(self, *step)  # type: ignore[misc]
                if data is None:
                    yield from self._own_rest()
                    return
                yield data
        finally:
            self.close()  # an upload that stops early must not keep the spool

    def _own_rest(self) -> Iterator[bytes]:
        """Detached for lagging: read the master again, skip what was already delivered."""
        if self._broadcast.reopen is None:
            raise ConsumerClosed(
                "this region fell further behind the shared read than the spool holds"
            )
        hashes = self.hashes.own() if self.hashes is not None else None
        skip = self.offset
        for chunk in self._broadcast.reopen().chunks():
            if hashes is not None:
                hashes.update(chunk)
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            piece, skip = (chunk[skip:] if skip else chunk), 0
            self.offset += len(piece)
            yield piece

    def close(self) -> None:
        """Detach: the reader stops waiting for this consumer; idempotent."""
        self._broadcast._detach(self)


class _Stream:
    """A consumer's chunks (a generator's interface) and the hashes of its data.

    ``hashes`` (md5 + the master's multihash) is complete once the stream has ended; an
    uploader may check them instead of hashing the same bytes again in every region's
    thread.
    """

    def __init__(self, chunks: Iterator[bytes], hashes: StreamHashes | None):
        self._chunks = chunks
        self.hashes = hashes

    def __iter__(self) -> _Stream:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        self._chunks.close()  # type: ignore[attr-defined]


class Broadcast:
    """One reader thread writing ``source.chunks()`` into a spool that every consumer reads.

    ``buffer_bytes``: how far the reader reads ahead of the fastest consumer.
    ``spool_bytes``: the spool's size, i.e. the most a consumer may lag before it is
    detached to its own read. ``pending``: joins still expected (``join``), which keep a
    reader with no consumer paused for up to ``join_timeout`` instead of stopping.
    With ``hash_algo`` (None: no hashing) the reader thread also computes the md5 and that
    multihash of what it reads, once for all consumers.
    """

    def __init__(
        self,
        source: ImageSource,
        consumers: int,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        name: str = "fanout",
        reopen: Callable[[], ImageSource] | None = None,
        hash_algo: str | None = None,
        spool_bytes: int = DEFAULT_SPOOL_BYTES,
        spool_dir: str | None = None,
        pending: int = 0,
        join_timeout: float = DEFAULT_JOIN_TIMEOUT,
        context: contextvars.Context | None = None,
    ):
        self.source = source
        self.size = source.size
        self.reopen = reopen
        self.window = buffer_bytes
        self.join_timeout = join_timeout
        self.hashes = _hashes(hash_algo)
        self.spool = RingSpool(spool_bytes, spool_dir)
        self.bytes_read = 0  # what the spool received: the stream bytes 0..bytes_read
        self.peak_lag = 0  # the most a consumer was ever behind the reader (spool held)
        self._ends: list[int] = []  # where each source chunk ends, so consumers keep them whole
        self._end: object | None = None  # _END or a _Failure once the reader stopped
        self._reading = True
        self._pending = pending
        self._joinable = True  # the spool still holds byte 0 and nobody gave up waiting
        self._cond = threading.Condition()
        self.consumers = [Consumer(self) for _ in range(consumers)]
        self.done = threading.Event()
        run = self._run if context is None else functools.partial(context.run, self._run)
        self._thread = threading.Thread(target=run, name=name, daemon=True)

    def start(self) -> Broadcast:
        self._thread.start()
        return self

    # -- the coordinator's side ----------------------------------------------------------
    def join(self) -> Consumer | None:
        """A new consumer reading from byte 0, or None when the spool no longer has it."""
        with self._cond:
            if not self._joinable or self.spool.closed:
                return None
            consumer = Consumer(self)
            self.consumers.append(consumer)
            self._cond.notify_all()
            return consumer

    def set_pending(self, count: int) -> None:
        with self._cond:
            self._pending = count
            self._cond.notify_all()
            self._maybe_close()

    # -- the reader thread ---------------------------------------------------------------
    def _run(self) -> None:
        # never let an interrupted read look complete: consumers would upload truncated data
        end: object = _Failure(RuntimeError("the read of the master image was interrupted"))
        chunks = None
        try:
            chunks = self.source.chunks()
            for chunk in chunks:
                if not self._room(len(chunk)):
                    break  # nobody left to read it: reading on would be wasted
                if self.hashes is not None:
                    self.hashes.update(chunk)
                if not self._store(chunk):
                    break
            else:
                end = _END
        except Exception as exc:  # noqa: BLE001 - handed to every consumer
            end = _Failure(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # release the file or HTTP stream when stopping early
            with self._cond:
                self._end, self._reading = end, False
                self._cond.notify_all()
                self._maybe_close()
            self.done.set()

    def _room(self, size: int) -> bool:
        """Wait until the fastest consumer is within the read-ahead, then detach those the
        next ``size`` bytes would overwrite. False when nobody is left (or will come)."""
        with self._cond:
            deadline = None
            while True:
                attached = self._attached()
                if attached:
                    deadline = None
                    lead = max(c.offset for c in attached)
                    ahead = self.bytes_read - lead
                    fits = self.bytes_read + size - lead <= self.spool.capacity
                    if (ahead < self.window and fits) or size > self.spool.capacity:
                        break  # (a chunk larger than the spool fails to store: own reads)
                    self._cond.wait()
                    continue
                if not (self._joinable and self._pending > 0):
                    self._joinable = False
                    return False
                deadline = deadline or time.monotonic() + self.join_timeout
                if deadline <= time.monotonic():
                    self._joinable = False  # the regions still expected read on their own
                    return False
                self._cond.wait(deadline - time.monotonic())
            overwritten = self.bytes_read + size - self.spool.capacity
            if overwritten > 0:
                self._joinable = False  # byte 0 is about to go
                for consumer in attached:
                    if consumer.offset < overwritten:
                        self._evict(consumer)
            return True

    def _store(self, chunk: bytes) -> bool:
        try:
            self.spool.write(self.bytes_read, chunk)
        except (OSError, ValueError):  # disk full, a chunk larger than the spool
            with self._cond:
                self._joinable = False
                for consumer in self._attached():
                    self._evict(consumer)
            return False
        with self._cond:
            self.bytes_read += len(chunk)
            self._ends.append(self.bytes_read)
            attached = self._attached()
            if attached:
                lag = self.bytes_read - min(c.offset for c in attached)
                self.peak_lag = max(self.peak_lag, lag)
            self._cond.notify_all()
        return True

    # -- the consumers' side -------------------------------------------------------------
    def _next(self, consumer: Consumer) -> tuple[int, int] | object | None:
        """(offset, length) of the consumer's next chunk, None at the end, ``_EVICTED``;
        raises the master read's failure, or ConsumerClosed when closed by someone else."""
        with self._cond:
            while True:
                if consumer.closed:
                    raise ConsumerClosed("the shared read of the master image was closed")
                if consumer.evicted:
                    return _EVICTED
                if consumer.offset < self.bytes_read:
                    i = bisect.bisect_right(self._ends, consumer.offset)
                    consumer.fetching = True
                    return consumer.offset, self._ends[i] - consumer.offset
                if self._end is _END:
                    return None
                if isinstance(self._end, _Failure):
                    raise _clone(self._end.error) from self._end.error
                self._cond.wait()

    def _fetch(self, consumer: Consumer, offset: int, length: int) -> bytes | None:
        """The chunk from the spool (outside the lock); None if the consumer was evicted
        while reading it (the bytes may have been overwritten)."""
        data, error = None, None
        try:
            data = self.spool.read(offset, length)
        except OSError as exc:
            error = exc
        with self._cond:
            consumer.fetching = False
            if consumer.evicted:
                data = None
            elif error is not None:
                raise error
            elif not consumer.closed:
                consumer.offset = offset + length
            self._cond.notify_all()
            self._maybe_close()
        return data

    def _detach(self, consumer: Consumer) -> None:
        with self._cond:
            consumer.closed = True
            consumer.attached = False
            self._cond.notify_all()
            self._maybe_close()

    # -- internals (lock held) -----------------------------------------------------------
    def _attached(self) -> list[Consumer]:
        return [c for c in self.consumers if c.attached]

    def _evict(self, consumer: Consumer) -> None:
        consumer.attached, consumer.evicted = False, True
        self._cond.notify_all()

    def _maybe_close(self) -> None:
        """Free the spool once nothing can read it any more."""
        if self._reading or self.spool.closed:
            return
        if any(c.attached or c.fetching for c in self.consumers):
            return
        if self._joinable and self._pending > 0 and self._end is _END:
            return  # a complete image in the spool: expected regions still read it
        self._joinable = False
        self.spool.close()


def _hashes(hash_algo: str | None) -> StreamHashes | None:
    if hash_algo is None:
        return None
    try:
        return StreamHashes(hash_algo)
    except ValueError:  # unknown algorithm: each uploader reports it itself
        return None


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
    loggers: list[regionlog.Target] = field(default_factory=list)


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
        self._deferred: set[str] = set()
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

    def defer(self, region: str) -> None:
        """``region`` waits for a free worker: no paused reader waits for it."""
        with self._cond:
            self._deferred.add(region)
            self._update_pending()

    def activate(self, region: str) -> None:
        with self._cond:
            self._deferred.discard(region)
            self._update_pending()

    def withdraw(self, region: str) -> None:
        """``region`` uploads nothing more in this run (its sync ended, well or not)."""
        with self._cond:
            self._withdrawn.add(region)
            self._deferred.discard(region)
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
        if joined is _START:
            return self._start(entry, region, master)
        if joined is None:  # the spool no longer holds the start
            return self._own_read(master, fallback=True)
        return self._hold(region, joined)  # type: ignore[arg-type]

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
                for region in entry.expected - entry.joined - self._withdrawn - self._deferred
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

    def _join(self, entry: _Shared, region: str, master: Image) -> Consumer | object | None:
        """Lock held. ``_START`` when this region must start the image's broadcast, else its
        consumer of the broadcast in progress (None: too far on); raises its open error."""
        while entry.starting:
            self._cond.wait()
        if entry.error is not None:
            raise _clone(entry.error) from entry.error
        consumer: Consumer | object | None = _START
        if entry.unspooled:
            consumer = None
        elif entry.broadcast is None:
            entry.starting = True
        else:
            consumer = entry.broadcast.join()
        entry.joined.add(region)
        entry.loggers.extend(regionlog.current())
        self._position[region] = master.id
        self._update_pending()
        return consumer

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
