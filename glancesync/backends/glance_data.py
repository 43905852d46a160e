"""Image data for the real backend: where the bytes come from and how they are checked.

BEHAVIOUR.md 6.4 (D4): the bytes of a master image come from ``<images_dir>/<id>`` when
that file exists, else they are streamed from the master Glance API. Either way they
flow through a :class:`HashingReader` straight into the region's upload request, so
memory use does not grow with the image size and no temporary file is written.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator

from glancesync.backends.base import ImageSource, ProgressCallback
from glancesync.backends.retry import RetryPolicy, is_transient

LOG = logging.getLogger(__name__)
CHUNK_SIZE = 1024 * 1024


class SourceOpenError(Exception):
    """The source could not be opened; ``upload`` reports it as "Cannot open the image".

    It is raised by ``chunks()`` before the first chunk, so the message can name the
    region being uploaded to, which only ``upload`` knows.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class FileSource:
    """A master image file of ``images_dir``, read in fixed-size chunks."""

    def __init__(self, path: str, size: int, chunk_size: int = CHUNK_SIZE):
        self.path, self.size, self.chunk_size = path, size, chunk_size

    def chunks(self) -> Iterator[bytes]:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below, generator-scoped
        except OSError as exc:
            raise SourceOpenError(exc.strerror or str(exc)) from None
        with handle:
            while chunk := handle.read(self.chunk_size):
                yield chunk


# Opens the master image data at a byte offset: ``open_stream(offset)`` yields the bytes
# from ``offset`` to the end (an HTTP ``Range: bytes=<offset>-`` request when offset > 0).
StreamOpener = Callable[[int], Iterator[bytes]]
# Test hook: wraps each opened stream (given its offset), e.g. to break it once mid-way.
StreamFault = Callable[[Iterator[bytes], int], Iterator[bytes]]


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
        fault: StreamFault | None = None,
    ):
        self.open_stream, self.image_id, self.size = open_stream, image_id, size
        self.retry = retry or RetryPolicy.from_env()
        self.fault = fault
        self.resumed_at: list[int] = []

    def chunks(self) -> Iterator[bytes]:
        offset, resumes = 0, 0
        try:
            stream = self._open(0)
        except Exception as exc:  # noqa: BLE001 - any failure to open is the same error
            raise SourceOpenError(describe(exc)) from None
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
                    LOG.warning(
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
        stream = self.retry.call(
            lambda: iter(self.open_stream(offset)), f"download of master image {self.image_id}"
        )
        return self.fault(stream, offset) if self.fault is not None else stream


def _close(stream: Iterator[bytes]) -> None:
    """Release the HTTP response behind a stream (generators close their ``finally``)."""
    close = getattr(stream, "close", None)
    if close is not None:
        close()


class HashingReader:
    """A file-like view of ``source.chunks()`` that hashes and counts what is read.

    glanceclient sends a file-like body by calling ``read(<chunk size>)`` until it gets b"".
    ``failure`` keeps an exception raised by the source, because the HTTP stack may wrap
    or replace it before it reaches the caller.
    """

    def __init__(
        self, source: ImageSource, hash_algo: str = "", progress: ProgressCallback | None = None
    ):
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.multihash = hashlib.new(hash_algo) if hash_algo else None
        self.progress = progress
        self.sent = 0
        self.failure: BaseException | None = None
        self._chunks = source.chunks()
        self._buffer = memoryview(b"")

    def open(self) -> None:
        """Read the first chunk now, so an unreadable source fails before any image exists.

        Raises :class:`SourceOpenError`.
        """
        self._buffer = memoryview(self._next_chunk())

    def read(self, size: int = -1) -> bytes:
        if not self._buffer:
            self._buffer = memoryview(self._next_chunk())
        if size is None or size < 0 or size >= len(self._buffer):
            piece, self._buffer = self._buffer, memoryview(b"")
        else:
            piece, self._buffer = self._buffer[:size], self._buffer[size:]
        return self._account(bytes(piece))

    def _next_chunk(self) -> bytes:
        """The next non-empty chunk, b"" at the end (an empty chunk is not the end)."""
        try:
            for chunk in self._chunks:
                if chunk:
                    return chunk
            return b""
        except BaseException as exc:
            self.failure = exc
            raise

    def _account(self, piece: bytes) -> bytes:
        self.md5.update(piece)
        if self.multihash is not None:
            self.multihash.update(piece)
        self.sent += len(piece)
        if piece and self.progress is not None:
            self.progress(len(piece))
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
