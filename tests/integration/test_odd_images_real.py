"""Odd images of real clouds on the testbed's Glance servers (issue 11 item 5, D21, D22, D26).

Some states cannot be made through the Glance API (a master image without checksum, as
Nova RBD snapshots leave; a property an older tool wrote without schema checks): those
are written straight into that Glance's sqlite database, as the issue asks.
"""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

import pytest
from fixtures_glance import MASTER, region_images, unique

pytestmark = pytest.mark.integration


def glance_db(tb_info, region: str) -> sqlite3.Connection:
    path = Path(tb_info["workdir"]) / f"glance-{region}" / "glance.db"
    assert path.is_file(), path
    return sqlite3.connect(path)


def drop_hashes(tb_info, region: str, image_id: str) -> None:
    """What an RBD snapshot looks like: an active image without checksum nor multihash."""
    with glance_db(tb_info, region) as db:
        db.execute(
            "UPDATE images SET checksum=NULL, os_hash_algo=NULL, os_hash_value=NULL WHERE id=?",
            (image_id,),
        )


def write_property(tb_info, region: str, image_id: str, name: str, value: str) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    with glance_db(tb_info, region) as db:
        db.execute(
            "INSERT INTO image_properties (image_id, name, value, created_at, deleted)"
            " VALUES (?, ?, ?, ?, 0)",
            (image_id, name, value, now),
        )


def sync(engine, master: str = "", region: str = "Trento"):
    gs, log = engine(master=master)
    result = gs.sync_region(region)
    return gs, log, result


def statuses(gs, region: str = "Trento") -> dict[str, str]:
    return {s.name: s.status for s in gs.region_statuses(region).images}


@pytest.mark.usefixtures("clean_glance")
def test_master_without_checksum_is_copied_once(add_image, glance, engine, tb_info):
    made = add_image(unique("rbd"))
    drop_hashes(tb_info, MASTER, made.id)
    assert not glance(MASTER).images.get(made.id).get("checksum")
    gs, _, result = sync(engine, "replace = any\n")
    assert not result.failed
    copy = region_images(glance("Trento"))[made.name]
    assert copy["glancesync_source_id"] == made.id
    assert copy["glancesync_source_hash"] == made.md5 == copy["checksum"]
    assert statuses(gs) == {made.name: "ok"}
    sync(engine, "replace = any\n")
    assert [i["id"] for i in glance("Trento").images.list()] == [copy["id"]]


@pytest.mark.usefixtures("clean_glance")
def test_hidden_master_is_synchronised_and_its_hidden_copy_is_not_uploaded_again(
    add_image, glance, engine
):
    made = add_image(unique("hidden"), os_hidden=True)
    gs, _, result = sync(engine)
    assert not result.failed
    hidden = list(glance("Trento").images.list(filters={"os_hidden": "true"}))
    assert [(i["name"], i["os_hidden"]) for i in hidden] == [(made.name, True)]
    assert statuses(gs) == {made.name: "ok"}
    sync(engine)
    assert len(list(glance("Trento").images.list(filters={"os_hidden": "true"}))) == 1
    assert list(glance("Trento").images.list()) == []


@pytest.mark.usefixtures("clean_glance")
def test_hidden_follows_the_master(add_image, glance, engine):
    made = add_image(unique("unhide"))
    sync(engine)
    glance(MASTER).images.update(made.id, os_hidden=True, min_ram=256, protected=True)
    try:
        gs, _ = engine()
        assert statuses(gs) == {made.name: "pending_metadata"}
        assert not gs.sync_region("Trento").failed
        copy = region_images(glance("Trento"))  # the default listing no longer shows it
        assert made.name not in copy
        record = next(iter(glance("Trento").images.list(filters={"os_hidden": "true"})))
        assert (record["os_hidden"], record["min_ram"], record["protected"]) == (True, 256, True)
        assert statuses(gs) == {made.name: "ok"}
    finally:
        glance(MASTER).images.update(made.id, protected=False)


@pytest.mark.usefixtures("clean_glance")
def test_protected_region_image_is_not_replaced(add_image, glance, engine):
    made = add_image(unique("prot"))
    old = add_image(made.name, region="Trento", protected=True)
    gs, log, result = sync(engine, "replace = any\n")
    assert not result.failed
    assert [i["id"] for i in glance("Trento").images.list()] == [old.id]
    warning = f"WARNING:Trento: image {made.name} is protected and cannot be replaced; "
    assert warning + "nothing uploaded" in log.lines
    assert statuses(gs) == {made.name: "error_checksum"}


@pytest.mark.usefixtures("clean_glance")
def test_protected_region_image_may_be_renamed(add_image, glance, engine):
    made = add_image(unique("protren"))
    add_image(made.name, region="Trento", protected=True)
    _, _, result = sync(engine, "rename = any\n")
    assert not result.failed
    names = region_images(glance("Trento"))
    assert set(names) == {made.name, f"{made.name}.old"}
    assert names[made.name]["checksum"] == made.md5


@pytest.mark.usefixtures("clean_glance")
def test_metadata_update_of_an_image_that_fails_the_schema(add_image, glance, engine, tb_info):
    made = add_image(unique("oldtool"), type="base")
    sync(engine)
    copy = region_images(glance("Trento"))[made.name]
    write_property(tb_info, "Trento", copy["id"], "kernel_id", "vmlinuz-2.6")
    write_property(tb_info, "Trento", copy["id"], "ramdisk_id", "not a uuid either")
    glance(MASTER).images.update(made.id, type="app")
    # glanceclient's own update refuses this image before sending anything.
    with pytest.raises(Exception, match="kernel_id|valid"):
        glance("Trento").images.update(copy["id"], type="x")
    gs, log, result = sync(engine, "metadata_set = type\n")
    assert not result.failed, log.lines
    record = dict(glance("Trento").images.get(copy["id"]))
    assert record["type"] == "app"
    assert "kernel_id" not in record and "ramdisk_id" not in record  # the master has none
    assert record["glancesync_source_id"] == made.id  # reserved: kept by the update
    assert statuses(gs) == {made.name: "ok"}


@pytest.mark.usefixtures("clean_glance")
def test_listing_reads_hidden_images_on_every_page(make_config, add_image):
    from glancesync.backends.glance import GlanceBackend

    made = [add_image(unique("vis")) for _ in range(3)]
    made += [add_image(unique("hid"), os_hidden=True) for _ in range(3)]
    config = make_config()
    images = GlanceBackend(config.targets["master"], config, page_size=2).list_images(MASTER)
    assert sorted(i.id for i in images) == sorted(m.id for m in made)
    assert sum(i.os_hidden for i in images) == 3
