"""``keep_old`` retention over the real Glance (issue 25 item 2).

Every rename glancesync makes writes ``glancesync_renamed_at``; of the marked images of
one name only the N renamed last stay. An unmarked ``.old`` (made by a person, or before
the mark existed) is never touched; a protected candidate stays, with a warning.
"""

from __future__ import annotations

import time

import pytest
from fixtures_glance import MASTER, unique

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_glance")]

RENAMED_AT = "glancesync_renamed_at"


def olds(client, name: str) -> dict[str, dict]:
    """id -> record of the region's ``<name>.old`` images."""
    return {i["id"]: dict(i) for i in client.images.list() if i["name"] == f"{name}.old"}


def new_master_content(glance, add_image, name: str) -> None:
    """The master image of ``name`` gets other bytes (a new image of the same name)."""
    for image in glance(MASTER).images.list(filters={"name": name}):
        glance(MASTER).images.delete(image["id"])
    add_image(name)


def test_keep_old_one_keeps_the_newest_renamed_copy(engine, add_image, glance):
    name = unique("kept")
    add_image(name)
    first = add_image(name, region="Trento")
    by_hand = add_image(f"{name}.old", region="Trento", public=False)
    protected = add_image(
        f"{name}.old",
        region="Trento",
        public=False,
        protected=True,
        **{RENAMED_AT: "2020-01-01T00:00:00Z"},
    )
    gs, log = engine(master="rename = any\nkeep_old = 1\n")
    warning = (
        f"WARNING:Trento: old version {name}.old ({protected.id}) is protected; "
        "kept although keep_old = 1"
    )

    result = gs.sync_region("Trento")
    assert not result.failed, log.lines
    assert warning in log.lines
    images = olds(glance("Trento"), name)
    assert set(images) == {first.id, by_hand.id, protected.id}
    assert images[first.id][RENAMED_AT].endswith("Z")
    second = next(i["id"] for i in glance("Trento").images.list() if i["name"] == name)

    time.sleep(1.1)  # the mark has a resolution of one second
    new_master_content(glance, add_image, name)
    log.clear()
    result = gs.sync_region("Trento")
    assert not result.failed, log.lines
    assert set(olds(glance("Trento"), name)) == {second, by_hand.id, protected.id}
    rows = [(r.name, r.action, r.result) for r in result.images if r.action == "delete_old"]
    assert (f"{name}.old", "delete_old", "deleted (keep_old)") in rows
    assert f"INFO:Trento: Deleting old version {name}.old ({first.id}), keep_old = 1" in log.lines
    assert warning in log.lines


def test_keep_old_zero_leaves_no_old_copy(engine, add_image, glance):
    name = unique("gone")
    add_image(name)
    region = add_image(name, region="Lannion")
    gs, log = engine(master="rename = any\nkeep_old = 0\n")
    result = gs.sync_region("Lannion")
    assert not result.failed, log.lines
    assert olds(glance("Lannion"), name) == {}
    assert f"INFO:Lannion: Deleting old version {name}.old ({region.id}), keep_old = 0" in log.lines
    rows = [(r.name, r.result) for r in result.images if r.action == "delete_old"]
    assert rows == [(f"{name}.old", "deleted (keep_old)")]


def test_dry_run_lists_what_keep_old_deletes(engine, add_image, glance):
    name = unique("dry")
    add_image(name)
    region = add_image(name, region="Lannion")
    gs, log = engine(master="rename = any\nkeep_old = 0\n")
    result = gs.sync_region("Lannion", dry_run=True)
    assert not result.failed, log.lines
    assert (
        f"INFO:Lannion: Old version pending to delete (keep_old = 0) {name}.old ({region.id})"
        in log.lines
    )
    assert glance("Lannion").images.get(region.id)["name"] == name


def test_renamed_obsolete_copies_are_candidates_too(engine, add_image, glance):
    base = unique("ubuntu")
    data = add_image(f"{base}_obsolete", public=False, sdc_aware="true").data
    older = add_image(
        f"{base}_obsolete", region="Trento", public=False, **{RENAMED_AT: "2021-01-01T00:00:00Z"}
    )
    region = add_image(base, region="Trento", data=data)
    gs, log = engine(master="obsolete_syncprops = sdc_aware\nkeep_old = 1\n")
    result = gs.sync_region("Trento")
    assert not result.failed, log.lines
    kept = {i["id"]: dict(i) for i in glance("Trento").images.list()}
    assert set(kept) == {region.id}
    assert kept[region.id]["name"] == f"{base}_obsolete" and RENAMED_AT in kept[region.id]
    assert f"INFO:Trento: Deleting old version {base}_obsolete ({older.id}), keep_old = 1" in (
        log.lines
    )
