"""The broadcast: one reader thread writes a master image into a spool that every
consumer (one region's upload) reads at its own pace (see ``glancesync.fanout``)."""

from __future__ import annotations

import bisect
import contextvars
import copy
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from glancesync.backends.base import ImageSource
from glancesync.backends.glance_data import StreamHashes
from glancesync.fanout.consumer import Chunk, Consumer, ConsumerClosed, End, Evicted, Step
from glancesync.spool import RingSpool

MIB = 1024 * 1024
DEFAULT_BUFFER_BYTES = 4 * MIB  # read-ahead of the fastest region: four 1 MiB chunks
DEFAULT_SPOOL_BYTES = 2048 * MIB  # the lag past which a region reads the master itself
DEFAULT_JOIN_TIMEOUT = 30.0


@dataclass(frozen=True)
class _Failure:
    """The master read failed; the error is re-raised by every consumer."""

    error: BaseException


@dataclass(frozen=True)
class _Complete:
    """The master read is complete."""


_Ending = _Complete | _Failure  # how the reader stopped


def clone_error(error: BaseException) -> BaseException:
    """A copy of ``error`` per consumer, so threads never share one traceback."""
    try:
        return copy.copy(error)
    except Exception:  # noqa: BLE001 - an uncopyable error is still worth raising
        return error


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
        self._end: _Ending | None = None  # set once the reader stopped
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
        end: _Ending = _Failure(RuntimeError("the read of the master image was interrupted"))
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
                end = _Complete()
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
    def _next(self, consumer: Consumer) -> Step:
        """Where the consumer's next chunk is, or that it has all, or that it was evicted;
        raises the master read's failure, or ConsumerClosed when closed by someone else."""
        with self._cond:
            while True:
                if consumer.closed:
                    raise ConsumerClosed("the shared read of the master image was closed")
                if consumer.evicted:
                    return Evicted()
                if consumer.offset < self.bytes_read:
                    i = bisect.bisect_right(self._ends, consumer.offset)
                    consumer.fetching = True
                    return Chunk(consumer.offset, self._ends[i] - consumer.offset)
                if isinstance(self._end, _Complete):
                    return End()
                if isinstance(self._end, _Failure):
                    raise clone_error(self._end.error) from self._end.error
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
        if self._joinable and self._pending > 0 and isinstance(self._end, _Complete):
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
