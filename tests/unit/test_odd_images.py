"""Odd images real clouds have (issue 11 item 5, reference 5.2, 1.4), on the mock backend.

Masters without checksum (Nova RBD snapshots), the reserved ``glancesync_*`` namespace,
``os_hidden``, ``protected``/``min_ram``/``min_disk`` following the master, and a protected
region image that a replace rule would delete.
"""

from __future__ import annotations

import logging

import pytest

from glancesync.backends import make_backends
from glancesync.backends.mock import MockStore
from glancesync.config import load_config
from glancesync.engine import GlanceSync
from glancesync.image import Image

SOURCE_ID, SOURCE_HASH = "glancesync_source_id", "glancesync_source_hash"

CONFIG = """
[main]
master_region = Valladolid

[master]
credential = user,ZmFrZXBhc3N3b3JkLG9mY291cnNl,http://server:5000/v3,tenant1
replace = any
{extra}
"""


def master(name: str = "snap", **fields) -> Image:
    base = dict(id=f"m-{name}", owner="tenant1id", is_public=True, checksum="", size=100)
    return Image(name=name, **{**base, **fields})


def world(masters: list[Image], burgos: list[Image] = (), extra: str = ""):
    config = load_config(text=CONFIG.format(extra=extra), environ={})
    store = MockStore({"Valladolid": masters, "Burgos": list(burgos)})
    log = logging.getLogger(f"odd-{id(store)}")
    log.propagate = False
    log.setLevel(logging.INFO)
    gs = GlanceSync(config, make_backends(config, environ={}, store=store), log)
    return gs, store, log


def statuses(gs: GlanceSync) -> dict[str, str]:
    return {s.name: s.status for s in gs.region_statuses("Burgos").images}


def burgos(store: MockStore) -> dict[str, Image]:
    return {i.name: i for i in store.images("Burgos")}


# --------------------------------------------------------------- masters without hashes


def test_master_without_checksum_is_uploaded_once():
    # Today: never "same content", so replace=any uploads it again on every run.
    gs, store, _ = world([master()])
    gs.sync_region("Burgos")
    copy = burgos(store)["snap"]
    assert copy.user_properties[SOURCE_ID] == "m-snap"
    assert statuses(gs) == {"snap": "ok"}
    gs.sync_region("Burgos")
    assert [i.id for i in store.images("Burgos")] == [copy.id]


def test_copy_of_another_master_image_is_not_the_same_content():
    other = Image(name="snap", id="r1", owner="tenant1id", is_public=True, checksum="", size=100)
    other.user_properties = {SOURCE_ID: "m-older", SOURCE_HASH: ""}
    gs, _, _ = world([master()], [other])
    assert statuses(gs) == {"snap": "pending_replace"}


def test_copy_whose_data_is_not_the_hash_copied_is_not_the_same_content():
    region = Image(name="snap", id="r1", owner="tenant1id", is_public=True, checksum="abc")
    region.user_properties = {SOURCE_ID: "m-snap", SOURCE_HASH: "def"}
    gs, _, _ = world([master()], [region])
    assert statuses(gs) == {"snap": "pending_replace"}


def test_masters_with_checksums_still_compare_checksums():
    region = Image(name="img", id="r1", owner="tenant1id", is_public=True, checksum="c1")
    region.user_properties = {SOURCE_ID: "m-img", SOURCE_HASH: "c1"}
    gs, _, _ = world([master("img", checksum="c2")], [region])
    assert statuses(gs) == {"img": "pending_replace"}


# --------------------------------------------------------------- reserved namespace


def test_reserved_properties_of_the_master_are_never_copied():
    props = {"type": "base", SOURCE_ID: "elsewhere", "glancesync_upload": "x"}
    gs, store, _ = world([master("img", checksum="c1", user_properties=props)])
    gs.sync_region("Burgos")
    copy = burgos(store)["img"].user_properties
    assert copy == {"type": "base", SOURCE_ID: "m-img", SOURCE_HASH: "c1"}
    assert statuses(gs) == {"img": "ok"}


def test_reserved_properties_are_not_compared_nor_removed_by_a_metadata_update():
    region = Image(name="img", id="r1", owner="tenant1id", is_public=True, checksum="c1")
    region.user_properties = {"type": "old", SOURCE_ID: "m-img", "glancesync_note": "keep"}
    gs, store, _ = world([master("img", checksum="c1", user_properties={"type": "new"})], [region])
    assert statuses(gs) == {"img": "pending_metadata"}
    gs.sync_region("Burgos")
    assert burgos(store)["img"].user_properties == {
        "type": "new",
        SOURCE_ID: "m-img",
        "glancesync_note": "keep",
    }
    assert statuses(gs) == {"img": "ok"}


def test_metadata_condition_does_not_see_reserved_properties():
    extra = "metadata_condition = 'glancesync_source_id' not in image.user_properties"
    props = {SOURCE_ID: "x"}
    gs, _, _ = world([master("img", checksum="c1", user_properties=props)], extra=extra)
    assert statuses(gs) == {"img": "pending_upload"}


def test_metadata_set_naming_a_reserved_key_compares_nothing_there():
    region = Image(name="img", id="r1", owner="tenant1id", is_public=True, checksum="c1")
    region.user_properties = {"type": "a", SOURCE_ID: "zzz"}
    extra = "metadata_set = type, glancesync_source_id"
    gs, _, _ = world([master("img", checksum="c1", user_properties={"type": "a"})], [region], extra)
    assert statuses(gs) == {"img": "ok"}


# --------------------------------------------------------------- followed attributes


@pytest.mark.parametrize(
    ("field", "value"),
    [("protected", True), ("min_ram", 512), ("min_disk", 4), ("os_hidden", True)],
)
def test_glance_attributes_follow_the_master(field, value):
    region = Image(name="img", id="r1", owner="tenant1id", is_public=True, checksum="c1")
    gs, store, _ = world([master("img", checksum="c1", **{field: value})], [region])
    assert statuses(gs) == {"img": "pending_metadata"}
    gs.sync_region("Burgos")
    assert getattr(burgos(store)["img"], field) == value
    assert statuses(gs) == {"img": "ok"}


def test_uploads_carry_protected_and_hidden():
    gs, store, _ = world([master("img", checksum="c1", protected=True, os_hidden=True)])
    gs.sync_region("Burgos")
    copy = burgos(store)["img"]
    assert (copy.protected, copy.os_hidden) == (True, True)
    assert statuses(gs) == {"img": "ok"}


# --------------------------------------------------------------- protected region images


def protected_copy() -> Image:
    return Image(
        name="img", id="r1", owner="tenant1id", is_public=True, checksum="old", protected=True
    )


def test_protected_image_to_replace_is_refused_before_uploading(log_lines):
    gs, store, log = world([master("img", checksum="new")], [protected_copy()])
    lines = log_lines(log)
    assert statuses(gs) == {"img": "error_checksum"}
    result = gs.sync_region("Burgos")
    assert [i.id for i in store.images("Burgos")] == ["r1"]
    assert "WARNING:Burgos: image img is protected and cannot be replaced; nothing uploaded" in (
        lines.lines
    )
    assert not result.failed
    assert [(e.name, e.statusBefore, e.result) for e in result.images] == [
        ("img", "error_checksum", "error")
    ]


def test_protected_image_may_still_be_renamed():
    extra = "rename = old"
    gs, store, _ = world([master("img", checksum="new")], [protected_copy()], extra)
    assert statuses(gs) == {"img": "pending_rename"}
    gs.sync_region("Burgos")
    names = {i.name: i for i in store.images("Burgos")}
    assert set(names) == {"img", "img.old"} and names["img"].checksum == "new"
    assert names["img.old"].protected


def test_protected_image_with_the_same_content_is_no_conflict():
    region = protected_copy().copy(checksum="c1")
    gs, _, _ = world([master("img", checksum="c1", protected=True)], [region])
    assert statuses(gs) == {"img": "ok"}


def test_mock_refuses_to_delete_a_protected_image():
    gs, store, _ = world([], [protected_copy()])
    backend = make_backends(gs.config, environ={}, store=store)["master"]
    with pytest.raises(Exception, match="is protected and cannot be deleted"):
        backend.delete("Burgos", "r1")
