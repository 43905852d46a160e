"""Image data for the real backend: where the bytes come from and how they are checked.

reference 6.4: the bytes of a master image come from ``<images_dir>/<id>`` when
that file exists, else they are streamed from the master Glance API. Either way they
flow through a :class:`HashingReader` straight into the region's upload request, so
memory use does not grow with the image size and no temporary file is written.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from glancesync import regionlog
from glancesync.backends.base import ImageSource, ProgressCallback
from glancesync.backends.glance_errors import kind_of
from glancesync.backends.retry import RetryPolicy, is_transient
from glancesync.errors import ErrorKind

LOG = logging.getLogger(__name__)
CHUNK_SIZE = 1024 * 1024
# Chunks the prefetch thread of an upload may read ahead of what was sent (memory bound).
PREFETCH_CHUNKS = 4


class SourceOpenError(Exception):
    """The source could not be opened; ``upload`` reports it as "Cannot open the image".

    It is raised by ``chunks()`` before the first chunk, so the message can name the
    region being uploaded to, which only ``upload`` knows.
    """

    def __init__(self, reason: str, kind: ErrorKind = ErrorKind.OTHER):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class FileSource:
    """A master image file of ``images_dir``, read in fixed-size chunks."""

    def __init__(self, path: str, size: int, chunk_size: int = CHUNK_SIZE):
        self.path, self.size, self.chunk_size = path, size, chunk_size

    def chunks(self) -> Iterator[bytes]:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below, generator-scoped
        except OSError as exc:
            raise SourceOpenError(exc.strerror or str(exc), kind_of(exc)) from None
        with handle:
            while chunk := handle.read(self.chunk_size):
                yield chunk


# Opens the master image data at a byte offset: ``open_stream(offset)`` yields the bytes
# from ``offset`` to the end (an HTTP ``Range: bytes=<offset>-`` request when offset > 0).
StreamOpener = Callable[[int], Iterator[bytes]]


class ApiSource:
    """A master image streamed from the master region's Glance API, resumed when it breaks.

    Nothing is contacted before ``chunks()`` is read. When the stream breaks with a
    transient error (reset, timeout, 5xx) after K bytes, it is reopened at K (HTTP
    ``Range``) instead of from zero, up to ``retry.attempts - 1`` times per read: the bytes
    already sent to the region are not read again, and the caller's hash just goes on
    over the rest (the bytes seen are exactly the image's, in order). ``resumed_at``
    records the offsets of the resumes, for logs and tests.
    """

    def __init__(
        self,
        open_stream: StreamOpener,
        image_id: str,
        size: int,
        retry: RetryPolicy | None = None,
    ):
        self.open_stream, self.image_id, self.size = open_stream, image_id, size
        self.retry = retry or RetryPolicy.from_env()
        self.resumed_at: list[int] = []

    def chunks(self) -> Iterator[bytes]:
        offset, resumes = 0, 0
        try:
            stream = self._open(0)
        except Exception as exc:  # noqa: BLE001 - any failure to open is the same error
            raise SourceOpenError(describe(exc), kind_of(exc)) from None
        try:
            while True:
                try:
                    chunk = next(stream, None)
                except Exception as exc:
                    if resumes >= self.retry.attempts - 1 or not is_transient(exc):
                        raise
                    if 0 < self.size <= offset:
                        return  # every byte arrived; only the end of the response was lost
                    resumes += 1
                    _close(stream)
                    regionlog.warning(
                        LOG,
                        "master image %s: stream broke after %d bytes (%s); resuming",
                        self.image_id,
                        offset,
                        describe(exc),
                    )
                    self.resumed_at.append(offset)
                    stream = self._open(offset)
                    continue
                if chunk is None:
                    return
                if chunk:
                    offset += len(chunk)
                    yield chunk
        finally:
            _close(stream)

    def _open(self, offset: int) -> Iterator[bytes]:
        """The stream from ``offset``; opening is retried on transient errors."""
        return self.retry.call(
            lambda: iter(self.open_stream(offset)), f"download of master image {self.image_id}"
        )


def _close(stream: Iterator[bytes]) -> None:
    """Release the HTTP response behind a stream (generators close their ``finally``)."""
    close = getattr(stream, "close", None)
    if close is not None:
        close()


class StreamHashes:
    """The md5 and the multihash (``os_hash_algo``, e.g. sha512) of a byte stream.

    Raises ValueError for an algorithm hashlib does not know.
    """

    def __init__(self, hash_algo: str = ""):
        self.algo = hash_algo
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.multihash = hashlib.new(hash_algo) if hash_algo else None

    def update(self, data: bytes) -> None:
        # hashlib releases the GIL on buffers > 2 KiB: other threads send and receive meanwhile
        self.md5.update(data)
        if self.multihash is not None:
            self.multihash.update(data)


class _End:
    """The source is exhausted (queue marker)."""


class _Raised:
    """The source raised ``error`` (queue marker)."""

    def __init__(self, error: BaseException):
        self.error = error


_EOF = _End()


class HashingReader:
    """A file-like view of ``source.chunks()`` that hashes and counts what is read.

    glanceclient sends a file-like body by calling ``read(<chunk size>)`` until it gets b"".
    ``failure`` keeps an exception raised by the source, because the HTTP stack may wrap
    or replace it before it reaches the caller.

    Speed (issue 7): after ``open()`` has read the first chunk, a prefetch thread reads the
    rest of the source (the master download) into a queue of at most ``prefetch`` chunks
    while the caller's thread hashes and sends: download, hashing and upload overlap
    (socket I/O and hashlib release the GIL). Whole chunks are handed on as they are, no
    copy. When the source's stream carries the hashes of the very bytes it yields (a
    fan-out share: the master is read and hashed once for every region), they are used
    instead of hashing again; the check is the same, the CPU is spent once.
    """

    def __init__(
        self,
        source: ImageSource,
        hash_algo: str = "",
        progress: ProgressCallback | None = None,
        prefetch: int = PREFETCH_CHUNKS,
    ):
        self._own = StreamHashes(hash_algo)  # ValueError for an unknown algorithm
        self.progress = progress
        self.sent = 0
        self.failure: BaseException | None = None
        self._chunks = source.chunks()
        shared = getattr(self._chunks, "hashes", None)
        self._shared = (
            shared if isinstance(shared, StreamHashes) and shared.algo == hash_algo else None
        )
        self._hashes = self._shared or self._own
        # a fan-out share already comes from a buffer filled by its own reader thread
        self._prefetch = prefetch if self._shared is None else 0
        self._chunk = b""
        self._pos = 0
        self._eof = False
        self._first_read = False
        self._queue: queue.Queue[object] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def md5(self) -> Any:
        return self._hashes.md5

    @property
    def multihash(self) -> Any:
        return self._hashes.multihash

    def open(self) -> None:
        """Read the first chunk now, so an unreadable source fails before any image exists.

        Raises :class:`SourceOpenError`.
        """
        self._chunk, self._pos = self._next_chunk(), 0

    def read(self, size: int = -1) -> bytes:
        if self._pos >= len(self._chunk):
            self._chunk, self._pos = self._next_chunk(), 0
        chunk, pos = self._chunk, self._pos
        if pos == 0 and (size is None or size < 0 or size >= len(chunk)):
            piece = chunk  # the whole chunk: no copy
        else:
            end = len(chunk) if size is None or size < 0 else pos + size
            piece = chunk[pos:end]
        self._pos = pos + len(piece)
        return self._account(piece)

    def close(self) -> None:
        """Stop reading the source (an upload that ended early); idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._drain()  # wake a prefetch thread blocked on a full queue
        else:
            _close(self._chunks)

    def _next_chunk(self) -> bytes:
        """The next non-empty chunk, b"" at the end (an empty chunk is not the end)."""
        if self._eof:
            return b""
        if self._prefetch <= 0 or not self._first_read:
            self._first_read = True  # the first chunk in the caller's thread: open errors here
            return self._direct()
        if self._thread is None:
            self._start()
        assert self._queue is not None
        item = self._queue.get()
        if isinstance(item, _Raised):
            self._eof = True
            self.failure = item.error
            raise item.error
        if item is _EOF:
            self._eof = True
            return b""
        return item  # type: ignore[return-value]

    def _direct(self) -> bytes:
        try:
            for chunk in self._chunks:
                if chunk:
                    return chunk
            self._eof = True
            return b""
        except BaseException as exc:
            self.failure = exc
            raise

    def _start(self) -> None:
        self._queue = queue.Queue(self._prefetch)
        # the reader runs in the uploading region's context: its warnings are the region's
        pump = functools.partial(contextvars.copy_context().run, self._pump)
        self._thread = threading.Thread(target=pump, name="glancesync-read", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        """Prefetch thread: the source's chunks into the queue, then its end or its error."""
        try:
            for chunk in self._chunks:
                if chunk and not self._put(chunk):
                    return
            self._put(_EOF)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the reading thread
            self._put(_Raised(exc))
        finally:
            _close(self._chunks)  # in this thread: a generator closes where it runs

    def _put(self, item: object) -> bool:
        assert self._queue is not None
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _drain(self) -> None:
        assert self._queue is not None
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def _account(self, piece: bytes) -> bytes:
        if self._shared is None:
            self._own.update(piece)
        self.sent += len(piece)
        if piece and self.progress is not None:
            try:
                self.progress(len(piece))
            except BaseException as exc:
                # e.g. errors.Cancelled: kept because the HTTP stack may wrap it on its way
                # out of ``read``, and the upload must still see it was a cancel
                self.failure = exc
                raise
        return piece

    def mismatch(self, checksum: str, hash_value: str) -> str | None:
        """The mismatch reason of 6.4, or None when the bytes read are the expected ones."""
        got = self.md5.hexdigest()
        if checksum and got != checksum:
            return f"checksum mismatch (expected {checksum}, got {got})"
        if self.multihash is not None and hash_value:
            got = self.multihash.hexdigest()
            if got != hash_value:
                return f"multihash mismatch (expected {hash_value}, got {got})"
        return None


def describe(exc: BaseException) -> str:
    """One readable line for an exception: its text, or its class name when it has none."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
