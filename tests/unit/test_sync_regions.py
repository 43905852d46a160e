"""GlanceSync.sync_regions: several regions at once, one master read per shared image."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from glancesync.backends.mock import MockStore
from glancesync.batch import SyncOptions
from glancesync.image import Image
from tests.support.syncworld import CHUNK, REGIONS, CountingSource, build_world, master_images


class DataBackend:
    """A MockBackend that reads the master data and consumes it on upload, like a real one.

    Upload reads the first chunk, then lets the mock create the image (where injected
    faults fire), then reads the rest. A failed upload keeps its half-read generator
    alive, so only the fan-out's withdraw can release the shared read.
    """

    def __init__(self, inner, reads: Counter, lock: threading.Lock):
        self.inner, self.reads, self.lock = inner, reads, lock
        self.received: dict[tuple[str, str], int] = {}
        self.abandoned: list[Iterator[bytes]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def image_source(self, region: str, image: Image) -> CountingSource:
        self.inner.image_source(region, image)  # the mock's own checks and faults
        return CountingSource(image, self.reads, self.lock)

    def upload(self, region, master, is_public, properties, source, progress=None) -> Image:
        chunks = source.chunks()
        got = len(next(chunks, b""))
        try:
            image = self.inner.upload(region, master, is_public, properties, source, progress)
        except Exception:
            self.abandoned.append(chunks)
            raise
        got += sum(len(chunk) for chunk in chunks)
        with self.lock:
            self.received[(region, master.name)] = got
        return image


SIZES = [CHUNK * (3 + i) + 17 for i in range(1, 6)]


@pytest.fixture
def world(monkeypatch):
    return build_world(monkeypatch, DataBackend, SIZES)


def uploaded(store: MockStore, region: str) -> list[str]:
    return sorted(image.name for image in store.images(region))


def test_each_shared_image_is_read_once(world):
    gs, store, reads, backends = world
    done = []
    options = SyncOptions(max_workers=3, on_done=lambda ref, result: done.append(ref.full))
    results = gs.sync_regions(REGIONS, options)
    assert [r.failed for r in results] == [False] * 3
    assert [r.region for r in results] == REGIONS
    assert sorted(done) == sorted(REGIONS)
    assert reads == {f"image{i}": 1 for i in range(1, 6)}
    names = [f"image{i}" for i in range(1, 6)]
    for region in REGIONS:
        assert uploaded(store, region) == names
    sizes = {image.name: image.size for image in master_images(SIZES)}
    received = {**backends["master"].received, **backends["other"].received}
    assert len(received) == 15
    assert all(got == sizes[name] for (_, name), got in received.items())


def test_a_failing_region_does_not_stop_the_others(world):
    gs, store, reads, _ = world
    store.fail_on("Caceres", "upload", after=1)
    start = time.monotonic()
    results = gs.sync_regions(REGIONS, SyncOptions(max_workers=3, join_timeout=10))
    assert time.monotonic() - start < 3  # nobody waited for Caceres until the timeout
    assert [r.failed for r in results] == [False, True, False]
    assert results[1].error == "Caceres: Upload of image2 Failed. Cause: injected fault"
    assert reads == {f"image{i}": 1 for i in range(1, 6)}
    assert uploaded(store, "Caceres") == ["image1"]
    assert (
        uploaded(store, "Burgos")
        == uploaded(store, "other:Madrid")
        == [f"image{i}" for i in range(1, 6)]
    )


def test_fewer_workers_than_regions_never_wait_for_queued_regions(world):
    gs, store, reads, _ = world
    start = time.monotonic()
    results = gs.sync_regions(REGIONS, SyncOptions(max_workers=2, join_timeout=10))
    assert time.monotonic() - start < 3
    assert not any(r.failed for r in results)
    # the first two regions share each read; the third starts after one of them and
    # joins the reads its spool still holds, or reads on its own: never a third read
    assert set(reads) == {f"image{i}" for i in range(1, 6)}
    assert all(1 <= count <= 2 for count in reads.values()), reads
    for region in REGIONS:
        assert uploaded(store, region) == [f"image{i}" for i in range(1, 6)]


def test_a_region_whose_listing_fails_takes_no_part(world):
    gs, store, reads, _ = world
    store.fail_on("Burgos", "list")
    results = gs.sync_regions(REGIONS, SyncOptions(max_workers=3, join_timeout=10))
    assert results[0].failed
    assert results[0].error == "Burgos: Error retrieving image list. Cause: injected fault"
    assert not results[1].failed and not results[2].failed
    assert reads == {f"image{i}": 1 for i in range(1, 6)}


def test_dry_run_reads_and_writes_nothing(world):
    gs, store, reads, _ = world
    before = store.snapshot()
    results = gs.sync_regions(REGIONS, SyncOptions(dry_run=True, max_workers=3))
    assert not any(r.failed for r in results)
    assert store.snapshot() == before
    assert not reads


def test_a_master_listing_failure_fails_every_region(world):
    gs, store, _, _ = world
    store.fail_on("Valladolid", "list")
    results = gs.sync_regions(REGIONS, SyncOptions(max_workers=3))
    assert [r.failed for r in results] == [True] * 3
