"""A small multi-region world on the mock store whose uploads really read master data.

Shared by the fan-out and cancel tests: three regions of two targets, a master source
that counts its reads, and buffers smaller than an image so that a consumer nobody
reads would block the shared reader.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from glancesync import batch
from glancesync.backends import make_backends
from glancesync.backends.mock import MockStore
from glancesync.config import load_config
from glancesync.engine import GlanceSync
from glancesync.image import Image

CHUNK = 1000
REGIONS = ["Burgos", "Caceres", "other:Madrid"]
CONFIG = """
[main]
master_region = Valladolid

[master]
credential = user,ZmFrZXBhc3N3b3JkLG9mY291cnNl,http://server:5000/v3,tenant1

[other]
credential = user2,ZmFrZXBhc3N3b3JkLG9mY291cnNl,http://server2:5000/v3,tenant2
"""


class CountingSource:
    """The master data of one image; every ``chunks()`` call is one read of the master."""

    def __init__(self, image: Image, reads: Counter, lock: threading.Lock):
        self.image, self.size = image, image.size
        self._reads, self._lock = reads, lock

    def chunks(self) -> Iterator[bytes]:
        with self._lock:
            self._reads[self.image.name] += 1
        for offset in range(0, self.size, CHUNK):
            yield self.image.name.encode()[:1] * min(CHUNK, self.size - offset)


def master_images(sizes: list[int]) -> list[Image]:
    return [
        Image(
            name=f"image{i}",
            id=f"id{i}",
            owner="tenant1id",
            is_public=True,
            checksum=f"chk{i}",
            size=size,
        )
        for i, size in enumerate(sizes, 1)
    ]


def build_world(
    monkeypatch, wrapper: type, sizes: list[int]
) -> tuple[GlanceSync, MockStore, Counter, dict[str, Any]]:
    """GlanceSync over a MockStore whose backends are wrapped by ``wrapper(inner, reads, lock)``."""
    monkeypatch.setattr(batch, "FanOut", functools.partial(batch.FanOut, buffer_bytes=2 * CHUNK))
    config = load_config(text=CONFIG, environ={})
    store = MockStore({"Valladolid": master_images(sizes), **{r: [] for r in REGIONS}})
    reads: Counter = Counter()
    lock = threading.Lock()
    backends = {
        name: wrapper(backend, reads, lock)
        for name, backend in make_backends(config, environ={}, store=store).items()
    }
    return GlanceSync(config, backends, logging.getLogger("sync-world")), store, reads, backends
