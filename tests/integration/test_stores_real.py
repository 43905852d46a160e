"""Multi-store regions on the testbed (issue 25 item 3): Lannion's Glance has two file
stores, ``fast`` (its default) and ``slow`` (tests/integration/conftest.py); a target with
``stores = fast, slow`` gets its copies into both, the second by Glance's copy-image."""

from __future__ import annotations

import pytest
from fixtures_glance import region_images, unique

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_glance")]

REGION = "Lannion"


@pytest.fixture(autouse=True)
def multi_store(tb_info):
    if REGION not in (tb_info.get("multi_store") or []):
        pytest.skip("the testbed was started without the multi-store region")


def stores_of(glance, name: str) -> set[str]:
    record = region_images(glance(REGION))[name]
    return {s for s in (record.get("stores") or "").split(",") if s}


def report_of(gs, name: str) -> dict:
    [entry] = [e for e in gs.image_report(REGION) if e["name"] == name]
    return entry


def test_a_copy_ends_in_both_stores_and_is_ok_next_run(engine, add_image, glance):
    name = unique("stores")
    add_image(name, size=4096)
    gs, log = engine(master="stores = fast, slow")
    result = gs.sync_region(REGION)
    assert not result.failed, (result.error, log.lines)
    assert f"INFO:{REGION}: copying image {name} into store(s) slow" in log.lines
    assert stores_of(glance, name) == {"fast", "slow"}
    seen = len(log.lines)
    assert not gs.sync_region(REGION).failed
    assert log.lines[seen:] == [f"INFO:{REGION}: Region is synchronized."]
    assert report_of(gs, name)["status"] == "ok"


def test_a_copy_removed_from_a_store_is_pending_metadata_and_copied_back(engine, add_image, glance):
    name = unique("stores")
    add_image(name, size=4096)
    gs, log = engine(master="stores = fast, slow")
    assert not gs.sync_region(REGION).failed, log.lines
    copy_id = region_images(glance(REGION))[name]["id"]
    glance(REGION).http_client.delete(f"/v2/stores/slow/{copy_id}")  # the operator's hand
    assert stores_of(glance, name) == {"fast"}
    entry = report_of(gs, name)
    assert entry["status"] == "pending_metadata"
    assert "not in store(s) slow" in entry["message"]
    seen = len(log.lines)
    result = gs.sync_region(REGION)
    assert not result.failed, (result.error, log.lines)
    assert log.lines[seen:] == [
        f"INFO:{REGION}: image {name} is not in store(s) slow; it will be copied there",
        f"INFO:{REGION}: Updating the metadata of image {name}",
        f"INFO:{REGION}: copying image {name} into store(s) slow",
        f"INFO:{REGION}:   Total uploaded to region: 0 (MB) ",
    ]
    assert stores_of(glance, name) == {"fast", "slow"}
    assert region_images(glance(REGION))[name]["id"] == copy_id  # copied, not uploaded again
    assert report_of(gs, name)["status"] == "ok"


def test_a_store_the_region_lacks_fails_the_region_naming_it(engine, add_image, glance):
    name = unique("stores")
    add_image(name)
    gs, log = engine(master="stores = fast, edge")
    result = gs.sync_region(REGION)
    assert result.failed
    assert result.error.startswith(f"{REGION}: the region's Glance has no store edge"), result.error
    assert name not in region_images(glance(REGION))
    trento = gs.sync_region("Trento")  # one store only: every configured store is missing
    assert trento.failed
    assert "no store fast, edge" in trento.error
