"""One upload's share of a broadcast: a consumer reading the spool at its own offset,
and the hashes its upload is checked with (the reader's, or its own once detached)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from glancesync.backends.glance_data import StreamHashes

if TYPE_CHECKING:
    from glancesync.fanout.broadcast import Broadcast


class ConsumerClosed(Exception):
    """A consumer was read after someone else closed it (its region withdrew)."""


@dataclass(frozen=True)
class Chunk:
    """The consumer's next chunk is in the spool at ``offset``."""

    offset: int
    length: int


@dataclass(frozen=True)
class Evicted:
    """The consumer fell behind the spool: it reads the master itself from here."""


@dataclass(frozen=True)
class End:
    """The master read is complete and the consumer has all of it."""


Step = Chunk | Evicted | End


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
                if isinstance(step, End):
                    return
                data = None
                if isinstance(step, Chunk):
                    data = broadcast._fetch(self, step.offset, step.length)
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
