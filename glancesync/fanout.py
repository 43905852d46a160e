"""Fan-out: one read of a master image feeds every region of the run that uploads it.

When several regions of one run (``--parallel``, ``GlanceSync.sync_regions``) need the
same master image, reading it once per region multiplies the load on the master (its
disk or its Glance API) by the number of regions. Here the master data is read ONCE by
a :class:`Broadcast` reader thread and copied into one bounded buffer per upload:

* memory is bounded: each consumer's buffer holds at most ``buffer_bytes`` (or one
  chunk, when a chunk is larger), so a slow region slows the reader, never grows memory;
* a consumer that stops early (its upload failed, its generator was closed, ``close()``)
  is detached: the reader never waits for it again, and stops reading when nobody is
  left;
* a failure of the master read reaches every consumer: their ``chunks()`` raise it, so
  each upload reports it as if it had read the master itself.

:class:`FanOut` is the per-run coordinator. The engine tells it which regions upload
which image (``expect``); each region then asks for its source (``source_for``) and
*joins* that image's broadcast. The broadcast starts when every region it still waits
for has joined, or when the join timeout runs out; a region that comes later falls back
to its own read of the master (counted in ``stats()``).

Why the waits cannot deadlock:

* every region uploads its images one at a time, in the same global order, the
  (size, name) order of pass 2 (BEHAVIOUR.md 6.1): a region's uploads are a subsequence
  of that order;
* a broadcast for image X only waits for regions that are running (not ``defer``-red
  behind a busy worker pool), have not withdrawn, have not joined X, and are not past
  X — a region is past X once it asked for the source of an image ordered after X;
* so if X waits for region R and R is itself waiting at image Y, then R has not passed
  X, hence Y < X: every wait points to a strictly earlier image, the waits form no
  cycle, and the earliest waiting image only waits for regions that are busy uploading,
  which progress (their broadcast only depends on consumers that are uploading, or
  detached). The join timeout bounds every wait anyway, e.g. for a region still busy
  with pass 1 or with a large image the others do not need;
* a region must ``withdraw`` when its sync ends (success or failure), so no broadcast
  waits for it; withdrawing also closes the consumer it may still hold, and asking for
  the next source closes the previous one, so a backend that returned without reading
  everything never blocks a reader.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from glancesync import regionlog
from glancesync.backends.base import ImageSource
from glancesync.backends.glance_data import StreamHashes
from glancesync.image import Image

DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024  # per consumer: four 1 MiB chunks of the real backend
DEFAULT_JOIN_TIMEOUT = 30.0

OpenSource = Callable[[Image], ImageSource]

_END = object()  # the master read is complete
_CLOSED = object()  # the consumer was closed while reading


@dataclass(frozen=True)
class _Failure:
    """The master read failed; the error is re-raised by every consumer."""

    error: BaseException


class ConsumerClosed(Exception):
    """A consumer was read after someone else closed it (its region withdrew)."""


def _clone(error: BaseException) -> BaseException:
    """A copy of ``error`` per consumer, so threads never share one traceback."""
    try:
        return copy.copy(error)
    except Exception:  # noqa: BLE001 - an uncopyable error is still worth raising
        return error


class _Channel:
    """A FIFO between the reader and one consumer, bounded in bytes, closable by the consumer.

    Closing drops what is buffered and wakes a reader blocked on it, which is what detaches
    a consumer without polling.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.peak = 0  # the most bytes ever buffered, for tests and tuning
        self._items: deque[object] = deque()
        self._bytes = 0
        self._closed = False
        self._cond = threading.Condition()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def put(self, item: object, size: int = 0) -> bool:
        """Wait for room (one item always fits an empty buffer); False when closed."""
        with self._cond:
            while not self._closed and self._bytes and self._bytes + size > self.limit:
                self._cond.wait()
            if self._closed:
                return False
            self._items.append(item)
            self._bytes += size
            self.peak = max(self.peak, self._bytes)
            self._cond.notify_all()
            return True

    def get(self) -> object:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if self._closed:
                return _CLOSED
            item = self._items.popleft()
            if isinstance(item, bytes):
                self._bytes -= len(item)
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
            self._bytes = 0
            self._cond.notify_all()


class Consumer:
    """One upload's share of a broadcast; an ``ImageSource`` whose data comes from a buffer.

    The broadcast is read once, so a second ``chunks()`` call (a retrying backend) reads
    the master again through ``reopen`` rather than failing.
    """

    def __init__(
        self,
        size: int,
        channel: _Channel,
        reopen: Callable[[], ImageSource] | None,
        hashes: StreamHashes | None = None,
    ):
        self.size = size
        self._channel = channel
        self._reopen = reopen
        self._hashes = hashes
        self._used = False

    @property
    def detached(self) -> bool:
        return self._channel.closed

    def chunks(self) -> Iterator[bytes]:
        if self._used:
            if self._reopen is None:
                raise RuntimeError("a fan-out consumer can be read only once")
            return self._reopen().chunks()
        self._used = True
        return _Stream(self._read(), self._hashes)

    def _read(self) -> Iterator[bytes]:
        try:
            while True:
                item = self._channel.get()
                if item is _END:
                    return
                if item is _CLOSED:
                    raise ConsumerClosed("the shared read of the master image was closed")
                if isinstance(item, _Failure):
                    raise _clone(item.error) from item.error
                yield item  # type: ignore[misc]
        finally:
            self.close()  # an upload that stops early must not hold the reader back

    def close(self) -> None:
        """Detach: the reader stops feeding this consumer and its buffer is freed."""
        self._channel.close()


class _Stream:
    """A consumer's chunks (a generator's interface) and the hashes of the shared read.

    ``hashes`` (md5 + the master's multihash, computed once by the reader thread over the
    very bytes every consumer gets) is complete once the stream has ended; an uploader may
    check them instead of hashing the same bytes again in every region's thread.
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
    """One reader thread copying ``source.chunks()`` into one bounded buffer per consumer.

    With ``hash_algo`` (None: no hashing) the reader thread also computes the md5 and that
    multihash of what it reads, once for all consumers (``_Stream.hashes``).
    """

    def __init__(
        self,
        source: ImageSource,
        consumers: int,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        name: str = "fanout",
        reopen: Callable[[], ImageSource] | None = None,
        hash_algo: str | None = None,
        context: contextvars.Context | None = None,
    ):
        self.source = source
        self.size = source.size
        self.bytes_read = 0
        self.hashes = _hashes(hash_algo)
        self.consumers = [
            Consumer(source.size, _Channel(buffer_bytes), reopen, self.hashes)
            for _ in range(consumers)
        ]
        self.done = threading.Event()
        run = self._run if context is None else functools.partial(context.run, self._run)
        self._thread = threading.Thread(target=run, name=name, daemon=True)

    @property
    def peak_buffered(self) -> int:
        """The most bytes one consumer's buffer ever held."""
        return max((c._channel.peak for c in self.consumers), default=0)

    def start(self) -> Broadcast:
        self._thread.start()
        return self

    def _run(self) -> None:
        # never let an interrupted read look complete: consumers would upload truncated data
        end: object = _Failure(RuntimeError("the read of the master image was interrupted"))
        chunks = None
        try:
            chunks = self.source.chunks()
            for chunk in chunks:
                self.bytes_read += len(chunk)
                if self.hashes is not None:
                    self.hashes.update(chunk)
                if not self._feed(chunk):
                    break  # every consumer detached: reading on would be wasted
            end = _END
        except Exception as exc:  # noqa: BLE001 - handed to every consumer
            end = _Failure(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # release the file or HTTP stream when stopping early
            for consumer in self.consumers:
                consumer._channel.put(end)
            self.done.set()

    def _feed(self, chunk: bytes) -> bool:
        """Give ``chunk`` to every attached consumer; False when none is left."""
        delivered = False
        for consumer in self.consumers:
            delivered = consumer._channel.put(chunk, len(chunk)) or delivered
        return delivered


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
    fallbacks: int  # own reads of a shared image (late or unexpected region)
    bytes_read: int  # bytes read from the master


WAITING, STARTING, STARTED = "waiting", "starting", "started"


@dataclass
class _Shared:
    """A master image that several regions of the run upload."""

    expected: set[str]
    master: Image | None = None
    joined: list[str] = field(default_factory=list)
    state: str = WAITING
    deadline: float = 0.0
    consumers: dict[str, Consumer] = field(default_factory=dict)
    error: Exception | None = None
    broadcast: Broadcast | None = None
    loggers: list[regionlog.Target] = field(default_factory=list)  # of the joined regions

    @property
    def key(self) -> tuple[int, str]:
        assert self.master is not None
        return (self.master.size, self.master.name)


class FanOut:
    """Per-run coordinator: which regions share which master image, and their broadcasts.

    Thread-safe; every region calls it from its own thread.
    """

    def __init__(
        self,
        open_source: OpenSource,
        join_timeout: float = DEFAULT_JOIN_TIMEOUT,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    ):
        self._open = open_source
        self.join_timeout = join_timeout
        self.buffer_bytes = buffer_bytes
        self._cond = threading.Condition()
        self._shared: dict[str, _Shared] = {}
        self._deferred: set[str] = set()
        self._withdrawn: set[str] = set()
        self._position: dict[str, tuple[int, str]] = {}  # last image each region asked for
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
            self._cond.notify_all()

    def shares(self, image_id: str) -> bool:
        with self._cond:
            return image_id in self._shared

    def defer(self, region: str) -> None:
        """``region`` waits for a free worker: no broadcast waits for it until ``activate``."""
        with self._cond:
            self._deferred.add(region)

    def activate(self, region: str) -> None:
        with self._cond:
            self._deferred.discard(region)
            self._cond.notify_all()

    def withdraw(self, region: str) -> None:
        """``region`` uploads nothing more in this run (its sync ended, well or not)."""
        with self._cond:
            self._withdrawn.add(region)
            self._deferred.discard(region)
            consumer = self._current.pop(region, None)
            self._cond.notify_all()
        if consumer is not None:
            consumer.close()

    # -- sources -----------------------------------------------------------------------
    def source_for(self, region: str, master: Image) -> ImageSource:
        """The data of ``master`` for ``region``'s upload: a share of the broadcast, or an
        own read when the image is not shared or the broadcast already started.

        Raises the error of opening the master when the broadcast could not start.
        """
        self._release(region)
        with self._cond:
            self._position[region] = (master.size, master.name)
            self._deferred.discard(region)
            self._cond.notify_all()  # broadcasts waiting for this region may now be ready
            entry = self._join(region, master)
            starter = entry is not None and self._await_turn(entry)
        if entry is None:
            return self._own_read(master)
        if starter:
            self._start(entry)
        return self._take(entry, region)

    def stats(self) -> FanOutStats:
        with self._cond:
            broadcast_bytes = sum(b.bytes_read for b in self._broadcasts)
            return FanOutStats(
                dict(self._reads), self._fallbacks, broadcast_bytes + self._own_bytes
            )

    # -- internals (the caller holds the lock where noted) -----------------------------
    def _release(self, region: str) -> None:
        """Asking for a new source means the previous one is finished with."""
        with self._cond:
            consumer = self._current.pop(region, None)
        if consumer is not None:
            consumer.close()

    def _join(self, region: str, master: Image) -> _Shared | None:
        """Lock held. The entry ``region`` joined, or None for an own read."""
        entry = self._shared.get(master.id)
        if entry is None:
            return None
        if entry.state != WAITING or region not in entry.expected or region in self._withdrawn:
            self._fallbacks += 1
            return None
        if not entry.joined:
            entry.master = master
            entry.deadline = time.monotonic() + self.join_timeout
        entry.joined.append(region)
        entry.loggers.extend(regionlog.current())  # the read's warnings concern each region
        return entry

    def _missing(self, entry: _Shared) -> set[str]:
        """Lock held. The regions ``entry`` still waits for (module docstring)."""
        return {
            region
            for region in entry.expected
            if region not in entry.joined
            and region not in self._withdrawn
            and region not in self._deferred
            and self._position.get(region, (-1, "")) < entry.key
        }

    def _await_turn(self, entry: _Shared) -> bool:
        """Lock held. Wait until ``entry`` can start; True when this thread must start it."""
        while entry.state == WAITING:
            remaining = entry.deadline - time.monotonic()
            if remaining <= 0 or not self._missing(entry):
                entry.state = STARTING  # no more joins: later regions read on their own
                return True
            self._cond.wait(remaining)
        return False

    def _start(self, entry: _Shared) -> None:
        """Open the master once and start the reader; outside the lock (it may be slow)."""
        master = entry.master
        assert master is not None
        error, consumers, broadcast = None, {}, None
        try:
            source = self._open(master)
            broadcast = Broadcast(
                source,
                len(entry.joined),
                self.buffer_bytes,
                name=f"fanout-{master.name}",
                reopen=lambda: self._own_read(master, fallback=True),
                hash_algo=master.os_hash_algo,
                context=regionlog.shared_by(entry.loggers),
            )
            consumers = dict(zip(entry.joined, broadcast.consumers, strict=True))
            broadcast.start()
        except Exception as exc:  # noqa: BLE001 - every joined region reports it
            error = exc
        with self._cond:
            entry.error, entry.consumers, entry.broadcast = error, consumers, broadcast
            if broadcast is not None:
                self._broadcasts.append(broadcast)
                self._reads[master.id] += 1
            entry.state = STARTED
            self._cond.notify_all()

    def _take(self, entry: _Shared, region: str) -> ImageSource:
        with self._cond:
            while entry.state != STARTED:
                self._cond.wait()
            if entry.error is not None:
                raise _clone(entry.error) from entry.error
            consumer = entry.consumers.pop(region)
            if region in self._withdrawn:  # withdrew while waiting: do not hold the reader
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
