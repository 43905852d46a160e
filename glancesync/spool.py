"""A bounded ring of bytes on local disk, in a file that has no name.

The fan-out (``glancesync.fanout``) writes the one read of a master image here so that
every region's upload reads it at its own pace. Why a file and not memory: a region
behind a slow link may lag by hundreds of MB, which must not become process memory
(the sync stays under 80 MB RSS at 1 GB); the kernel's page cache serves the fresh part
of the file to the regions that keep up, so they read memory speed without us holding it.

Why a ring: the spool holds at most ``capacity`` bytes however large the image, so disk
use is bounded by a setting (``spool_max_mb``), not by the image.

Why nameless: ``tempfile.TemporaryFile`` opens the file with ``O_TMPFILE`` (or unlinks it
right after opening), so no path ever exists that a crash, a ``kill -9`` or a power cut
could leave behind; the space is given back when the descriptor is closed, by us or by
the kernel when the process dies.

Offsets given to :class:`RingSpool` are absolute positions in the image; the caller
guarantees that nothing still needed is overwritten (it never writes more than
``capacity`` bytes past the oldest offset a reader still needs).
"""

from __future__ import annotations

import os
import tempfile


class RingSpool:
    """``capacity`` bytes of anonymous file; byte ``n`` of the stream lives at ``n % capacity``.

    ``pread``/``pwrite`` take explicit positions, so one writer thread and any number of
    reader threads share the descriptor without a lock or a seek.
    """

    def __init__(self, capacity: int, directory: str | None = None):
        if capacity <= 0:
            raise ValueError("a spool needs a positive capacity")
        self.capacity = capacity
        self._file = tempfile.TemporaryFile(  # noqa: SIM115 - lives as long as the spool
            dir=directory or None, prefix="glancesync-spool-"
        )
        self._fd = self._file.fileno()
        self.size = 0  # bytes of disk the file may use: at most ``capacity``

    @property
    def closed(self) -> bool:
        return self._file.closed

    def write(self, offset: int, data: bytes | memoryview) -> None:
        """Store ``data`` as the stream bytes ``offset``…; raises OSError (e.g. disk full)."""
        if len(data) > self.capacity:
            raise ValueError("a write larger than the spool")
        view = memoryview(data)
        for position, piece in self._pieces(offset, len(view)):
            part = view[piece[0] : piece[1]]
            while part:
                written = os.pwrite(self._fd, part, position)
                part, position = part[written:], position + written
        self.size = min(self.capacity, max(self.size, offset + len(view)))

    def read(self, offset: int, length: int) -> bytes:
        """The stream bytes ``offset``…``offset + length`` (they must still be in the ring)."""
        parts = []
        for position, piece in self._pieces(offset, length):
            want = piece[1] - piece[0]
            while want:
                data = os.pread(self._fd, want, position)
                if not data:
                    raise OSError(f"the spool file ended at {position}")
                parts.append(data)
                want, position = want - len(data), position + len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """Give the disk space back; idempotent."""
        self._file.close()

    def _pieces(self, offset: int, length: int) -> list[tuple[int, tuple[int, int]]]:
        """(file position, (start, end) in the data) of the one or two runs of a transfer."""
        position = offset % self.capacity
        first = min(length, self.capacity - position)
        pieces = [(position, (0, first))]
        if first < length:
            pieces.append((0, (first, length)))
        return pieces
