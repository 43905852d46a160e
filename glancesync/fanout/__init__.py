"""Fan-out: one read of a master image feeds every region of the run that uploads it,
each region at its own speed.

When several regions of one run (``--parallel``, ``GlanceSync.sync_regions``, a service
fan-out group) need the same master image, reading it once per region multiplies the
load on the master (its disk, its Glance API, its WAN link) by the number of regions.
Here the master data is read ONCE by a :class:`Broadcast` reader thread (``broadcast``;
its :class:`Consumer`-s in ``consumer``).

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

:class:`FanOut` (``coordinator``) is the per-run coordinator: the engine tells it each
region's planned upload order (``plan``) and which regions upload which image
(``expect``); each region asks for its source (``source_for``), which starts the
image's broadcast or joins it; a region ``withdraw``-s when its sync ends.
"""

from glancesync.fanout.broadcast import (
    DEFAULT_BUFFER_BYTES,
    DEFAULT_JOIN_TIMEOUT,
    DEFAULT_SPOOL_BYTES,
    MIB,
    Broadcast,
)
from glancesync.fanout.consumer import Consumer, ConsumerClosed
from glancesync.fanout.coordinator import FanOut, FanOutStats, OpenSource

__all__ = [
    "DEFAULT_BUFFER_BYTES",
    "DEFAULT_JOIN_TIMEOUT",
    "DEFAULT_SPOOL_BYTES",
    "MIB",
    "Broadcast",
    "Consumer",
    "ConsumerClosed",
    "FanOut",
    "FanOutStats",
    "OpenSource",
]
