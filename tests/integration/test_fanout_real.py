"""Fan-out on the testbed: ``sync_regions`` reads each shared master image once and streams it
to every region that needs it (``glancesync.fanout``), across both Keystones; a region whose
Glance dies mid-upload fails alone while the others finish from the same read.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fixtures_glance import region_images, unique

from glancesync.backends import make_backends
from glancesync.backends.base import ImageSource
from glancesync.batch import SyncOptions
from glancesync.engine import GlanceSync
from glancesync.image import Image
from tests.support.logs import LoggerLines

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_glance")]

MB = 1048576
REGIONS = ["Trento", "Lannion", "other:Madrid"]
GLANCE_OF = {"Trento": "Trento", "Lannion": "Lannion", "other:Madrid": "Madrid"}


class CountingMaster:
    """The real ``master`` backend, whose ``image_source`` counts every read of the data.

    Everything else (listing, uploads to Trento and Lannion, which share its Keystone)
    goes to the real backend unchanged.
    """

    def __init__(self, real: Any):
        self._real = real
        self._lock = threading.Lock()
        self.reads: Counter[str] = Counter()  # image id -> chunks() calls
        self.bytes: Counter[str] = Counter()  # image id -> bytes yielded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def image_source(self, region: str, image: Image) -> ImageSource:
        return _CountedSource(self, image.id, self._real.image_source(region, image))

    def count(self, image_id: str, reads: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.reads[image_id] += reads
            self.bytes[image_id] += nbytes


class _CountedSource:
    def __init__(self, owner: CountingMaster, image_id: str, source: ImageSource):
        self.size = source.size
        self._owner, self._id, self._source = owner, image_id, source

    def chunks(self) -> Iterator[bytes]:
        self._owner.count(self._id, reads=1)  # counted when asked, even if never consumed
        return self._stream()

    def _stream(self) -> Iterator[bytes]:
        for chunk in self._source.chunks():
            self._owner.count(self._id, nbytes=len(chunk))
            yield chunk


def make_engine(log_lines, config, backends) -> tuple[GlanceSync, LoggerLines]:
    log = logging.getLogger(f"glancesync-fanout-{uuid.uuid4().hex[:6]}")
    log.propagate = False
    log.setLevel(logging.INFO)
    return GlanceSync(config, backends=backends, log=log), log_lines(log)


def assert_synced(glance, region: str, made) -> None:
    image = region_images(glance(GLANCE_OF[region]))[made.name]
    assert image["status"] == "active", (region, image["status"])
    assert image["checksum"] == made.md5, region
    assert image["os_hash_value"] == made.record["os_hash_value"], region


def test_one_master_read_feeds_three_regions(make_config, add_image, glance, log_lines):
    images = [add_image(unique("fan"), size=3 * MB + extra) for extra in (0, 4096)]
    config = make_config(other="")
    backends = make_backends(config, environ={})
    master = backends["master"] = CountingMaster(backends["master"])
    gs, log = make_engine(log_lines, config, backends)

    results = gs.sync_regions(REGIONS, SyncOptions(max_workers=3))

    assert [r.region for r in results] == REGIONS
    assert not any(r.failed for r in results), log.lines
    for region in REGIONS:
        for made in images:
            assert_synced(glance, region, made)
    for made in images:
        assert master.reads[made.id] == 1, (made.name, dict(master.reads))
        assert master.bytes[made.id] == len(made.data), (made.name, dict(master.bytes))
    assert set(master.reads) == {made.id for made in images}


class KillLannionAt:
    """Progress factory: kills ``glance-Lannion`` once Lannion's upload has sent ``limit``
    bytes; records each region's ``ended`` hook (see ``executor.ProgressFactory``)."""

    def __init__(self, testbed, limit: int):
        self.testbed, self.limit = testbed, limit
        self.sent: Counter[str] = Counter()
        self.killed_at: int | None = None
        self.ends: dict[str, str | None] = {}  # region -> the image its failure names
        self.lock = threading.Lock()

    def __call__(self, region: str, name: str, size: int):
        def advance(nbytes: int) -> None:
            with self.lock:
                self.sent[region] += nbytes
                kill = (
                    region == "Lannion"
                    and self.killed_at is None
                    and self.sent[region] >= self.limit
                )
                if kill:
                    self.killed_at = self.sent[region]
            if kill:
                self.testbed.kill_server("glance-Lannion")  # in Lannion's upload thread

        return advance

    def ended(self, region: str, failed_image: str | None) -> None:
        with self.lock:
            self.ends[region] = failed_image


def test_region_killed_mid_upload_fails_alone(
    make_config, add_image, glance, testbed, monkeypatch, log_lines
):
    monkeypatch.setenv("GLANCESYNC_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("GLANCESYNC_RETRY_WAIT", "0.1")
    monkeypatch.setenv("GLANCESYNC_RETRY_MAX_WAIT", "0.2")
    made = add_image(unique("fankill"), size=8 * MB)
    config = make_config(other="")
    gs, log = make_engine(log_lines, config, make_backends(config, environ={}))
    progress = KillLannionAt(testbed, 2 * MB)
    try:
        results = gs.sync_regions(REGIONS, SyncOptions(max_workers=3, progress=progress))
    finally:
        testbed.start_server("glance-Lannion")  # before clean_glance wipes every region

    by_region = {r.region: r for r in results}
    lannion = by_region["Lannion"]
    assert progress.killed_at is not None and progress.killed_at < made.record["size"]
    assert lannion.failed, log.lines
    assert lannion.error.startswith(f"Lannion: Upload of {made.name} Failed. Cause: "), (
        lannion.error
    )
    assert f"ERROR:{lannion.error}" in log.lines
    entry = next(e for e in lannion.images if e.name == made.name)
    assert (entry.result, entry.error) == ("failed", lannion.error)
    for region in ("Trento", "other:Madrid"):
        assert not by_region[region].failed, (region, log.lines)
        assert_synced(glance, region, made)
    assert progress.ends == {"Lannion": made.name, "Trento": None, "other:Madrid": None}
    lannion_image = region_images(glance("Lannion")).get(made.name)
    assert lannion_image is None or lannion_image["status"] != "active"


class FreezeLannionAfterFirstChunk:
    """Progress factory: SIGSTOPs ``glance-Lannion`` once Lannion's upload has sent one
    1 MiB chunk, and counts what every region's upload has sent."""

    def __init__(self, testbed):
        self.testbed = testbed
        self.sent: Counter[str] = Counter()
        self.frozen = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, region: str, name: str, size: int):
        def advance(nbytes: int) -> None:
            with self.lock:
                self.sent[region] += nbytes
                freeze = (
                    region == "Lannion" and not self.frozen.is_set() and self.sent[region] >= MB
                )
                if freeze:
                    self.frozen.set()
            if freeze:
                self.testbed.freeze_server("glance-Lannion")

        return advance

    def ended(self, region: str, failed_image: str | None) -> None:
        pass


def test_a_frozen_region_does_not_hold_the_others(
    make_config, add_image, glance, testbed, log_lines
):
    """Lannion's Glance stops answering after its first chunk: Trento and Madrid still get
    the whole image from the one master read while Lannion has taken only a few MB (the
    socket buffers); Lannion then fails alone (cancelled here, instead of waiting out its
    data timeout)."""
    made = add_image(unique("fanfreeze"), size=48 * MB)
    config = make_config(other="")
    backends = make_backends(config, environ={})
    master = backends["master"] = CountingMaster(backends["master"])
    gs, log = make_engine(log_lines, config, backends)
    progress = FreezeLannionAfterFirstChunk(testbed)
    done: dict[str, Any] = {}
    others_done = threading.Event()
    cancel_lannion = threading.Event()

    def on_done(ref, result) -> None:
        done[ref.full] = result
        if {"Trento", "other:Madrid"} <= set(done):
            others_done.set()

    def cancel(ref) -> bool:
        return ref.full == "Lannion" and cancel_lannion.is_set()

    options = SyncOptions(max_workers=3, progress=progress, on_done=on_done, cancel=cancel)
    with ThreadPoolExecutor(max_workers=1) as pool:
        run = pool.submit(gs.sync_regions, REGIONS, options)
        try:
            # a deadlock guard, not a speed assertion: in lock-step this never happens
            finished_while_frozen = others_done.wait(240)
            lannion_sent = progress.sent["Lannion"]
            assert progress.frozen.is_set()
        finally:
            cancel_lannion.set()
            testbed.thaw_server("glance-Lannion")
        results = {r.region: r for r in run.result(timeout=300)}
    assert finished_while_frozen, (dict(progress.sent), log.lines)
    for region in ("Trento", "other:Madrid"):
        assert not results[region].failed, (region, log.lines)
        assert_synced(glance, region, made)
    assert lannion_sent <= 12 * MB, lannion_sent  # one chunk plus what the sockets buffer
    assert results["Lannion"].failed
    assert master.reads[made.id] == 1  # Lannion was never detached to its own read
    lannion_image = region_images(glance("Lannion")).get(made.name)
    assert lannion_image is None or lannion_image["status"] != "active"
