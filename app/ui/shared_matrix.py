"""One image matrix for every viewer of the page (issue 22, docs/security.md).

Building the matrix lists the master and every region's Glance: with each open page
asking for it, the cost grew with the viewers. Here it is built at most once per
``[ui] MATRIX_TTL`` seconds per process (a viewer arriving meanwhile waits for the build
in progress instead of starting another), and again as soon as a sync of its regions
ended (the page reloads it then); each viewer gets the page of rows it asks for,
filtered on the server (``rows``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MATRIX_EXTENSION = "glancesync.ui.matrix"
MAX_ROWS = 1000  # rows of one page of the matrix, at most


class SharedMatrix:
    """The last matrix of each region list, reused for ``ttl`` seconds (thread-safe)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._built: dict[tuple[str, ...], tuple[float, dict]] = {}

    def get(
        self, regions: list[str], build: Callable[[list[str]], dict], version: object = None
    ) -> dict:
        """The matrix of ``regions``; ``version`` (the end of the last sync of those
        regions) changing means the images changed: built again, whatever the TTL."""
        key = (tuple(regions), version)
        with self._lock:  # one build at a time: the others wait and reuse it
            built = self._built.get(key)
            if built is not None and self.clock() - built[0] < self.ttl:
                return built[1]
            matrix = build(regions)
            self._built = {key: (self.clock(), matrix)}  # one entry: the latest
            return matrix


@dataclass(frozen=True)
class RowQuery:
    """What a viewer asks of the matrix: a part of the image name, a page."""

    name: str = ""
    offset: int = 0
    limit: int | None = None  # None: every row


def rows(matrix: dict, query: RowQuery) -> dict:
    """The matrix with the rows matching ``query.name`` (case-insensitive), one page of
    them, and ``total``: how many matched."""
    wanted = query.name.casefold()
    images = [i for i in matrix["images"] if wanted in i["name"].casefold()]
    end = None if query.limit is None else query.offset + query.limit
    return {
        "regions": matrix["regions"],
        "images": images[query.offset : end],
        "total": len(images),
        "offset": query.offset,
    }
