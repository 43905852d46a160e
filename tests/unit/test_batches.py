"""``--parallel`` plans each batch of ``max_children`` regions when the batch starts
(issue 11, item 3): a region queued behind others never executes an old plan, and the
master listing prefetches the first batch only."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from glancesync.batch import SyncOptions
from glancesync.image import Image
from tests.support.syncworld import REGIONS, build_world

SIZES = [1000, 2000, 3000]


class Recording:
    """A MockBackend that records listings and uploads in one shared order; while Burgos
    uploads image1, an operator puts the same image1 in Caceres by hand."""

    events: list[tuple[str, str]] = []

    def __init__(self, inner: Any, reads: Counter, lock: threading.Lock):
        self.inner, self.lock = inner, lock

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def list_images(self, region: str) -> list[Image]:
        with self.lock:
            self.events.append(("list", self.inner.full_name(region)))
        return self.inner.list_images(region)

    def upload(self, region, master, is_public, properties, source, progress=None) -> Image:
        full = self.inner.full_name(region)
        with self.lock:
            self.events.append(("upload", full))
        image = self.inner.upload(region, master, is_public, properties, source, progress)
        if full == "Burgos" and master.name == "image1":
            by_hand = image.copy(region="Caceres", id="by-hand")
            store = self.inner.store
            store.add_region("Caceres", [*store.images("Caceres"), by_hand])
        return image


@pytest.fixture
def world(monkeypatch):
    Recording.events = []
    return build_world(monkeypatch, Recording, SIZES)


def test_a_queued_region_is_planned_when_its_batch_starts(world):
    gs, store, _, _ = world
    results = gs.sync_regions(REGIONS, SyncOptions(max_workers=1))
    assert not any(r.failed for r in results)
    caceres = store.images("Caceres")
    # planned after Burgos ran: image1 was already there, so it was not uploaded again
    assert sorted(image.name for image in caceres) == ["image1", "image2", "image3"]
    assert [image.id for image in caceres if image.name == "image1"] == ["by-hand"]
    events = Recording.events
    assert events.index(("list", "Caceres")) > max(
        i for i, event in enumerate(events) if event == ("upload", "Burgos")
    )


def test_the_master_listing_prefetches_the_first_batch_only(world):
    gs, _, _, _ = world
    gs.sync_regions(REGIONS, SyncOptions(max_workers=2))
    events = Recording.events
    madrid = events.index(("list", "other:Madrid"))
    first_batch = [("upload", "Burgos"), ("upload", "Caceres")]
    assert madrid > max(i for i, event in enumerate(events) if event in first_batch)
