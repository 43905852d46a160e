"""Cancel mid-upload on the testbed (issue 7, item 4): the real backend stops between two
chunks, deletes the half image, and the region ends failed with ``cancelled``."""

from __future__ import annotations

import threading

import pytest
from fixtures_glance import region_images, unique

from glancesync.batch import SyncOptions

pytestmark = [
    pytest.mark.integration,
    pytest.mark.concurrency,
    pytest.mark.usefixtures("clean_glance"),
]

MB = 1048576


class CancelAfter:
    """A progress factory whose cancel check turns true once ``limit`` bytes were sent."""

    def __init__(self, limit: int):
        self.limit, self.sent = limit, 0
        self.lock = threading.Lock()

    def __call__(self, region: str, name: str, size: int):
        def advance(nbytes: int) -> None:
            with self.lock:
                self.sent += nbytes

        return advance

    def should_cancel(self) -> bool:
        with self.lock:
            return self.sent >= self.limit


def test_cancel_mid_upload_leaves_no_image(engine, add_image, glance):
    name = unique("cancel")
    add_image(name, size=8 * MB)
    gs, log = engine()
    progress = CancelAfter(2 * MB)
    result = gs.sync_region("Trento", progress=progress, should_cancel=progress.should_cancel)
    assert result.failed and result.error == "cancelled", log.lines
    assert 2 * MB <= progress.sent < 8 * MB  # stopped between chunks, not at the end
    assert "ERROR:Trento: sync cancelled" in log.lines
    entry = next(e for e in result.images if e.name == name)
    assert (entry.result, entry.error) == ("failed", "cancelled")
    assert name not in region_images(glance("Trento"))  # neither half nor marked image


def test_cancel_of_one_region_lets_the_other_finish(engine, add_image, glance):
    """Fan-out: both regions share one master read; the cancelled one withdraws."""
    name = unique("fanout")
    made = add_image(name, size=6 * MB)
    gs, log = engine()
    progress = CancelAfter(2 * MB)
    options = SyncOptions(
        max_workers=2,
        progress=progress,
        cancel=lambda ref: ref.full == "Trento" and progress.should_cancel(),
    )
    results = gs.sync_regions(["Trento", "Lannion"], options)
    by_region = {r.region: r for r in results}
    assert by_region["Trento"].error == "cancelled", log.lines
    assert not by_region["Lannion"].failed, log.lines
    assert name not in region_images(glance("Trento"))
    assert region_images(glance("Lannion"))[name]["checksum"] == made.md5
