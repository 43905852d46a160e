"""Multi-store regions (issue 25 item 3): the pure rules of glancesync.stores, the mock's
stores, the report's message, and whole syncs through the mock backend."""

from __future__ import annotations

import logging

import pytest

from glancesync import report, stores
from glancesync import status as st
from glancesync.backends.glance_records import to_image
from glancesync.backends.glance_stores import copy_request, copy_state, store_names
from glancesync.backends.mock import MockBackend, MockStore
from glancesync.config import Config, MainOptions, Target, load_config
from glancesync.credentials import Connection
from glancesync.engine import GlanceSync
from glancesync.errors import BackendError
from glancesync.image import Image
from glancesync.status import ImageStatus, RegionStatus

MASTER = Target(name="master", connection=Connection("", tenant="tenant1"))


def image(name: str = "img", stores_: tuple[str, ...] = (), **changes) -> Image:
    base = Image(name=name, id=f"id-{name}", checksum="c1", size=10, owner="tenant1id")
    return base.copy(stores=stores_, **changes)


# -- pure rules ---------------------------------------------------------------------------


def test_wanted_stores_are_the_configured_ones_in_order():
    target = Target(name="master", stores=("slow", "fast"))
    assert stores.wanted_stores("R", target, ["fast", "slow"]) == ("slow", "fast")


def test_all_stores_puts_the_region_default_first():
    target = Target(name="master", all_stores=True)
    assert stores.wanted_stores("R", target, ["fast", "slow", "cold"]) == ("fast", "slow", "cold")


def test_a_store_the_region_lacks_fails_the_region_naming_it():
    target = Target(name="master", stores=("fast", "edge"))
    with pytest.raises(BackendError, match=r"^R: the region's Glance has no store edge"):
        stores.wanted_stores("R", target, ["fast", "slow"])
    with pytest.raises(BackendError, match="no store fast, edge .*not multi-store"):
        stores.wanted_stores("R", target, [])


def test_configured():
    assert not stores.configured(Target(name="t"))
    assert stores.configured(Target(name="t", stores=("a",)))
    assert stores.configured(Target(name="t", all_stores=True))


def test_an_ok_copy_missing_a_store_is_pending_metadata_naming_it():
    master = image()
    statuses = [
        ImageStatus("img", st.OK, master, image(stores_=("fast",))),
        ImageStatus("b", st.OK, master, image("b", ("fast", "slow"))),
        ImageStatus("c", st.PENDING_UPLOAD, master),
        ImageStatus("d", st.OK_STALLED, master, image("d", ())),
    ]
    result = stores.with_stores(RegionStatus(statuses, {}, frozenset()), ("fast", "slow"))
    got = [(s.name, s.status, s.missing_stores) for s in result.images]
    assert got == [
        ("img", st.PENDING_METADATA, ("slow",)),
        ("b", st.OK, ()),
        ("c", st.PENDING_UPLOAD, ()),
        ("d", st.OK_STALLED, ()),
    ]
    assert stores.store_lines("R", result) == [
        "R: image img is not in store(s) slow; it will be copied there"
    ]
    message = report.status_message(result.images[0])
    assert message.startswith("Same content as the master; not in store(s) slow")


def test_glance_records_and_requests():
    assert to_image({"id": "1", "stores": "fast,slow"}, "R").stores == ("fast", "slow")
    assert to_image({"id": "1"}, "R").stores == ()
    info = {"stores": [{"id": "slow"}, {"id": "fast", "default": True}]}
    assert store_names(info) == ["fast", "slow"]
    assert copy_request(("slow",)) == {
        "method": {"name": "copy-image"},
        "stores": ["slow"],
        "all_stores_must_succeed": True,
    }
    active = {"status": "active", "stores": "fast"}
    assert copy_state(active, ("slow",)) is None
    assert copy_state({**active, "stores": "fast,slow"}, ("slow",)) == "done"
    assert "slow" in copy_state({**active, "os_glance_failed_import": "slow"}, ("slow",))


def test_options_are_read_from_the_file():
    text = """
[main]
master_region = Valladolid
[master]
user = u
password = p
keystone_url = http://k
tenant = t
stores = fast, slow
[other]
user = u
password = p
keystone_url = http://k
tenant = t
all_stores = true
"""
    config = load_config(text=text, environ={})
    assert config.master.stores == ("fast", "slow")
    assert config.targets["other"].all_stores is True
    assert config.targets["other"].stores == ()


# -- the mock -------------------------------------------------------------------------------


def test_mock_regions_have_one_default_store_unless_told():
    store = MockStore({"Valladolid": [image()], "Burgos": []})
    backend = MockBackend(MASTER, store)
    assert backend.stores("Burgos") == ["default"]
    assert backend.list_images("Valladolid")[0].stores == ()  # as loaded: listings unchanged
    store.set_stores("Valladolid", ["fast", "slow"])
    assert backend.list_images("Valladolid")[0].stores == ("fast",)
    assert store.snapshot()["Valladolid"][0].stores == ()
    store.set_stores("Burgos", ["fast", "slow"])
    new = backend.upload("Burgos", image(), False, {}, None, store="slow")
    assert new.stores == ("slow",)
    assert backend.copy_to_stores("Burgos", new, ("fast",), timeout=1).stores == ("slow", "fast")
    store.drop_store("Burgos", new.id, "slow")
    assert backend.list_images("Burgos")[0].stores == ("fast",)
    with pytest.raises(BackendError, match="no store cold"):
        backend.upload("Burgos", image(), False, {}, None, store="cold")
    with pytest.raises(BackendError, match="unknown store"):
        backend.copy_to_stores("Burgos", new, ("cold",), timeout=1)


# -- whole syncs through the mock -----------------------------------------------------------


def sync_world(**options) -> tuple[GlanceSync, MockStore]:
    master = image(is_public=True)
    store = MockStore({"Valladolid": [master], "Burgos": []})
    store.set_stores("Burgos", ["fast", "slow"])
    target = Target(name="master", connection=Connection("", tenant="tenant1"), **options)
    config = Config(MainOptions("Valladolid"), {"master": target})
    return GlanceSync(config, {"master": MockBackend(target, store)}), store


def statuses(gs: GlanceSync) -> list[tuple[str, str, str | None]]:
    return [(e["name"], e["status"], e["message"]) for e in gs.image_report("Burgos")]


def test_a_synced_copy_ends_in_every_store_and_is_ok(caplog):
    gs, store = sync_world(stores=("slow", "fast"))
    with caplog.at_level(logging.INFO):
        result = gs.sync_region("Burgos")
    assert not result.failed, result.error
    copy = store.snapshot()["Burgos"][0]
    assert copy.stores == ("slow", "fast")  # uploaded into the first, then copied
    assert "Burgos: copying image img into store(s) fast" in caplog.text
    assert statuses(gs) == [("img", st.OK, None)]


def test_a_copy_missing_from_a_store_is_pending_metadata_then_copied(caplog):
    gs, store = sync_world(stores=("fast", "slow"))
    gs.sync_region("Burgos")
    copy = store.snapshot()["Burgos"][0]
    store.drop_store("Burgos", copy.id, "slow")
    [(name, status, message)] = statuses(gs)
    assert (name, status) == ("img", st.PENDING_METADATA)
    assert "not in store(s) slow" in message
    with caplog.at_level(logging.INFO):
        dry = gs.sync_region("Burgos", dry_run=True)
    assert "Burgos: image img is not in store(s) slow; it will be copied there" in caplog.text
    assert (dry.images[0].statusBefore, dry.images[0].action) == (
        st.PENDING_METADATA,
        "update_metadata",
    )
    assert store.snapshot()["Burgos"][0].stores == ("fast",)
    result = gs.sync_region("Burgos")
    assert not result.failed, result.error
    assert store.snapshot()["Burgos"][0].stores == ("fast", "slow")
    assert statuses(gs) == [("img", st.OK, None)]


def test_all_stores(caplog):
    gs, store = sync_world(all_stores=True)
    assert not gs.sync_region("Burgos").failed
    assert store.snapshot()["Burgos"][0].stores == ("fast", "slow")


def test_a_store_the_region_lacks_fails_that_region():
    gs, store = sync_world(stores=("fast", "edge"))
    result = gs.sync_region("Burgos")
    assert result.failed
    assert result.error.startswith("Burgos: the region's Glance has no store edge")
    assert store.snapshot()["Burgos"] == []


def test_the_mock_default_store():
    gs, store = sync_world(stores=("default",))
    store.set_stores("Burgos", ["default"])
    assert not gs.sync_region("Burgos").failed
    assert statuses(gs) == [("img", st.OK, None)]


def test_without_stores_nothing_changes():
    gs, store = sync_world()
    assert not gs.sync_region("Burgos").failed
    assert store.snapshot()["Burgos"][0].stores == ()
    assert statuses(gs) == [("img", st.OK, None)]
