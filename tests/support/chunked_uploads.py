"""Uploads that go chunk by chunk through the mock, so a test can cancel or interrupt a
region between two chunks."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from glancesync.backends.mock import MockStore
from glancesync.errors import Cancelled
from glancesync.image import Image
from tests.support.syncworld import CHUNK, CountingSource


class ChunkedUploads:
    """The mock behind an upload that reads its source and reports each chunk, like the
    real backend; the image is stored only once every byte went through. A cancelled upload
    keeps its half-read source, so only the fan-out's withdraw can release a shared read."""

    def __init__(self, inner: Any, reads: Counter, lock: threading.Lock):
        self.inner, self.reads, self.lock = inner, reads, lock
        self.chunks: Counter = Counter()  # region full name -> chunks sent
        self.abandoned: list[Iterator[bytes]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def image_source(self, region: str, image: Image) -> CountingSource:
        return CountingSource(image, self.reads, self.lock)

    def upload(self, region, master, is_public, properties, source, progress=None) -> Image:
        chunks = source.chunks()
        for chunk in chunks:
            with self.lock:
                self.chunks[self.inner.full_name(region)] += 1
            if progress is not None:
                try:
                    progress(len(chunk))
                except Cancelled:
                    self.abandoned.append(chunks)
                    raise
        return self.inner.upload(region, master, is_public, properties, source, None)


SIZES = [CHUNK * (5 + i) for i in range(1, 5)]


def names(store: MockStore, region: str) -> list[str]:
    return sorted(image.name for image in store.images(region))
