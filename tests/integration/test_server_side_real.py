"""Server-side copies (target option ``transfer``) on the testbed's real Glances.

Trento and Lannion are regions of the master's Keystone: their Glances import a master
image with glance-download (the testbed enables it), so no byte crosses this host. Madrid
(target ``other``) is another Keystone: ``auto`` copies through this host there.
"""

from __future__ import annotations

import pytest
from fixtures_glance import region_images, unique

from glancesync.backends.glance import GlanceBackend
from glancesync.image import SOURCE_HASH

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_glance")]


def copies(result) -> dict[str, tuple[str, str | None]]:
    return {e.name: (e.result, e.transfer) for e in result.images}


def test_glance_download_to_trento_and_lannion_verified_ok_then_no_op(engine, add_image, glance):
    small, big = unique("gd-small"), unique("gd-big")
    one = add_image(small, size=5000, type="base", hw_disk_bus="virtio")
    two = add_image(big, size=300_000)
    gs, log = engine(master="transfer = glance-download")
    results = gs.sync_regions(["Trento", "Lannion"])
    for result in results:
        assert not result.failed, log.lines
        assert copies(result) == {
            small: ("done", "glance-download"),
            big: ("done", "glance-download"),
        }
        assert result.summary.endswith("0 (MB) server-side")
        images = region_images(glance(result.region))
        assert images[small]["checksum"] == one.md5
        assert images[big]["os_hash_value"] == two.record["os_hash_value"]
        # the sync's metadata, set after the import; the marker gone once verified
        assert (images[small]["type"], images[small]["hw_disk_bus"]) == ("base", "virtio")
        assert "glancesync_upload" not in images[small]
        assert images[small][SOURCE_HASH] == one.md5
    for region in ("Trento", "Lannion"):
        statuses = {s.name: s.status for s in gs.region_statuses(region).images}
        assert statuses == {small: "ok", big: "ok"}
    log.clear()
    again = gs.sync_regions(["Trento", "Lannion"])
    assert [r.summary for r in again] == [
        "Trento: Region is synchronized.",
        "Lannion: Region is synchronized.",
    ]


def test_dry_run_names_the_path(engine, add_image):
    name = unique("gd-dry")
    add_image(name)
    gs, log = engine(master="transfer = glance-download")
    result = gs.sync_region("Trento", dry_run=True)
    assert copies(result) == {name: ("planned", "glance-download")}
    assert f"INFO:Trento: Pending: {name} (0.00 MB, glance-download)" in log.lines


def test_forced_import_failure_is_cleaned_up_and_fails_that_image_only(
    engine, add_image, glance, monkeypatch
):
    """The region's Glance is asked for a master image id it cannot fetch (an injected
    fault at the import call): its task fails, the importing image is deleted."""
    from glancesync.backends import glance_import

    good, bad = unique("gd-good"), unique("gd-bad")
    add_image(good, size=1000)
    bad_id = add_image(bad, size=9000).id  # larger: copied after the good one
    real = glance_import.import_request

    def wrong_id(region, image_id, interface):
        if image_id == bad_id:
            image_id = "00000000-0000-4000-8000-000000000000"
        return real(region, image_id, interface)

    monkeypatch.setattr("glancesync.backends.glance.import_request", wrong_id)
    gs, log = engine(master="transfer = glance-download\nimport_timeout = 120")
    result = gs.sync_region("Trento")
    assert result.failed
    outcome = {e.name: e for e in result.images}
    assert (outcome[good].result, outcome[good].transfer) == ("done", "glance-download")
    assert (outcome[bad].result, outcome[bad].transfer) == ("failed", "glance-download")
    assert outcome[bad].error.startswith(f"Trento: Import of {bad} (glance-download) Failed.")
    images = region_images(glance("Trento"))
    assert list(images) == [good]  # the failed import left nothing behind


def test_auto_falls_back_to_proxy_for_an_image_whose_import_fails(
    engine, add_image, glance, monkeypatch
):
    from glancesync.backends import glance_import

    name = unique("gd-fallback")
    made = add_image(name, size=4000)
    real = glance_import.import_request
    monkeypatch.setattr(
        "glancesync.backends.glance.import_request",
        lambda region, image_id, interface: real(
            region, "00000000-0000-4000-8000-000000000000", interface
        ),
    )
    gs, log = engine(master="transfer = auto\nimport_timeout = 120")
    result = gs.sync_region("Lannion")
    assert not result.failed, log.lines
    assert copies(result) == {name: ("done", "proxy")}
    assert any(line.startswith("WARNING:Lannion: Import of") for line in log.lines)
    assert region_images(glance("Lannion"))[name]["checksum"] == made.md5
    assert [n for n in region_images(glance("Lannion"))] == [name]


def test_auto_uses_glance_download_where_advertised_and_proxy_for_another_keystone(
    engine, add_image, glance
):
    name = unique("gd-auto")
    made = add_image(name, size=3000)
    gs, log = engine(master="transfer = auto", other="transfer = auto")
    trento, madrid = gs.sync_regions(["Trento", "other:Madrid"])
    assert not trento.failed and not madrid.failed, log.lines
    assert copies(trento) == {name: ("done", "glance-download")}
    assert copies(madrid) == {name: ("done", "proxy")}
    assert region_images(glance("Madrid"))[name]["checksum"] == made.md5


def test_the_testbed_glances_advertise_glance_download(make_config):
    backend = GlanceBackend(make_config().master, make_config())
    assert backend.can_import("Trento")


def test_cancel_during_an_import_deletes_the_importing_image(
    engine, add_image, glance, monkeypatch
):
    from glancesync.backends.glance_import import ImportTransaction

    name = unique("gd-cancel")
    add_image(name, size=8 * 1024 * 1024)
    started = []
    real_start = ImportTransaction.start

    def start(self, image_id):
        real_start(self, image_id)
        started.append(image_id)

    monkeypatch.setattr(ImportTransaction, "start", start)
    gs, log = engine(master="transfer = glance-download")
    result = gs.sync_region("Trento", should_cancel=lambda: bool(started))
    assert result.failed and result.error == "cancelled"
    assert started
    assert name not in region_images(glance("Trento"))
