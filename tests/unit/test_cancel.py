"""Cancel between the chunks of an upload (issue 7, item 4): one region, and the fan-out
case where a cancelled region withdraws from the shared master read while the others go on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from glancesync.backends.glance_data import HashingReader
from glancesync.backends.retry import is_transient
from glancesync.batch import SyncOptions
from glancesync.errors import BackendError, Cancelled
from glancesync.regions import RegionRef
from tests.support.chunked_uploads import SIZES, ChunkedUploads, names
from tests.support.syncworld import REGIONS, build_world

pytestmark = pytest.mark.concurrency


@pytest.fixture
def world(monkeypatch):
    return build_world(monkeypatch, ChunkedUploads, SIZES)


def after_chunks(backends: dict, region: str, count: int) -> Callable[[], bool]:
    """A cancel check that turns true once ``region`` sent ``count`` chunks."""
    target = "other" if region.startswith("other:") else "master"
    return lambda: backends[target].chunks[region] >= count


def test_cancel_stops_an_upload_between_chunks(world):
    gs, store, _, backends = world
    result = gs.sync_region("Burgos", should_cancel=after_chunks(backends, "Burgos", 2))
    assert result.failed and result.error == "cancelled"
    assert backends["master"].chunks["Burgos"] == 2  # not the 6 chunks of image1
    assert names(store, "Burgos") == []  # no half image
    image1 = next(e for e in result.images if e.name == "image1")
    assert (image1.result, image1.error) == ("failed", "cancelled")


def test_a_cancel_on_the_last_chunk_keeps_the_whole_image_and_stops_before_the_next(world):
    gs, store, _, backends = world
    result = gs.sync_region("Burgos", should_cancel=after_chunks(backends, "Burgos", 6))
    assert result.failed and result.error == "cancelled"
    assert names(store, "Burgos") == ["image1"]


def test_progress_hooks_see_the_plan_and_the_failed_upload(world):
    gs, _, _, backends = world
    calls: list[tuple] = []

    class Factory:
        def __call__(self, region: str, name: str, size: int):
            calls.append(("start", region, name))
            return None

        def planned(self, region: str, nbytes: int) -> None:
            calls.append(("planned", region, nbytes))

        def ended(self, region: str, failed_image: str | None) -> None:
            calls.append(("ended", region, failed_image))

    gs.sync_region("Burgos", progress=Factory(), should_cancel=after_chunks(backends, "Burgos", 2))
    total = sum(SIZES)
    assert calls == [
        ("planned", "Burgos", total),
        ("start", "Burgos", "image1"),
        ("ended", "Burgos", "image1"),
    ]


def test_a_cancelled_region_withdraws_from_the_fan_out_and_the_others_go_on(world):
    gs, store, reads, backends = world
    cancel = after_chunks(backends, "Caceres", 2)
    start = time.monotonic()
    options = SyncOptions(max_workers=3, cancel=lambda ref: ref.full == "Caceres" and cancel())
    results = gs.sync_regions(REGIONS, options)
    elapsed = time.monotonic() - start
    by_region = {r.region: r for r in results}
    assert by_region["Caceres"].failed and by_region["Caceres"].error == "cancelled"
    assert names(store, "Caceres") == []
    everything = [f"image{i}" for i in range(1, 5)]
    for region in ("Burgos", "other:Madrid"):
        assert not by_region[region].failed
        assert names(store, region) == everything
    assert reads == {name: 1 for name in everything}  # the master is still read once
    # the abandoned consumer was detached: nothing waited for Caceres (join timeout: 30 s)
    assert elapsed < 5
    assert backends["master"].abandoned


def test_sync_regions_should_cancel_stops_every_region(world):
    gs, store, _, _ = world
    results = gs.sync_regions(REGIONS, SyncOptions(max_workers=3, cancel=lambda ref: True))
    assert [r.error for r in results] == ["cancelled"] * 3
    assert all(names(store, region) == [] for region in REGIONS)


def test_cancel_is_never_retried_and_survives_the_http_stack():
    assert not is_transient(Cancelled())
    assert isinstance(Cancelled(), BackendError) and str(Cancelled()) == "cancelled"

    class OneChunk:
        size = 10

        def chunks(self) -> Iterator[bytes]:
            yield b"0123456789"

    def cancel(nbytes: int) -> None:
        raise Cancelled()

    reader = HashingReader(OneChunk(), progress=cancel)
    reader.open()
    with pytest.raises(Cancelled):
        reader.read(5)
    assert isinstance(reader.failure, Cancelled)  # what GlanceBackend looks at


def test_one_cancel_check_per_region():
    assert SyncOptions().cancel_of(RegionRef("master", "Burgos")) is None
    flag = threading.Event()
    options = SyncOptions(cancel=lambda ref: ref.name == "Burgos" and flag.is_set())
    check = options.cancel_of(RegionRef("master", "Burgos"))
    assert check is not None and not check()
    flag.set()
    assert check() and options.stopped(RegionRef("master", "Burgos")) == "cancelled"
    assert options.stopped(RegionRef("master", "Caceres")) is None
