"""An active copy still carrying a dead run's upload marker (issue 21 item 9).

A run killed after Glance took the last byte but before it removed ``glancesync_upload``
leaves an *active* marked copy. The next run verifies it against its master (checksum
and multihash): a verified copy loses its marker; any other is deleted and uploaded again.
The real-Glance version is in tests/integration/test_stale_copy_real.py.
"""

from __future__ import annotations

import logging

from glancesync.backends import make_backends
from glancesync.backends.base import UPLOAD_MARKER
from glancesync.backends.mock import MockStore
from glancesync.config import load_config
from glancesync.engine import GlanceSync
from glancesync.image import SOURCE_HASH, Image
from glancesync.leftovers import Runs, classify

CONFIG = """
[main]
master_region = Valladolid
[master]
credential = user,cHc=,http://ks:5000/v3,tenant1
"""
DEAD, ALIVE = "cli:otherhost:1:dead", "cli:otherhost:2:alive"
RUNS = Runs(run_id="task:me", is_dead=lambda run_id: run_id == DEAD)


def image(id_: str, checksum: str = "c1", hash_: str = "h1", region: str = "Burgos", **props):
    return Image(
        name="a", id=id_, region=region, owner="tenant1id", is_public=True, checksum=checksum,
        size=10, os_hash_algo="sha512", os_hash_value=hash_, user_properties=dict(props),
    )  # fmt: skip


def sync(burgos: list[Image], caplog, dry_run: bool = False) -> list[Image]:
    store = MockStore({"Valladolid": [image("m1", region="Valladolid")], "Burgos": burgos})
    config = load_config(text=CONFIG, environ={})
    gs = GlanceSync(config, make_backends(config, environ={}, store=store))
    with caplog.at_level(logging.INFO, logger="GlanceSync-Client"):
        result = gs.sync_region("Burgos", dry_run=dry_run, runs=RUNS)
    assert not result.failed, result.error
    return store.images("Burgos")


def test_a_verified_copy_of_a_dead_run_loses_its_marker_and_stays(caplog):
    left = sync([image("b1", **{UPLOAD_MARKER: DEAD})], caplog)
    assert [i.id for i in left] == ["b1"]
    assert UPLOAD_MARKER not in left[0].user_properties
    assert left[0].user_properties[SOURCE_HASH] == "c1"
    assert "Burgos: Image b1 of an interrupted upload verified; marker removed" in caplog.messages


def test_a_copy_of_a_dead_run_that_does_not_verify_is_replaced(caplog):
    for bad in (image("b1", checksum="other", **{UPLOAD_MARKER: DEAD}),
                image("b1", hash_="other", **{UPLOAD_MARKER: DEAD})):  # fmt: skip
        left = sync([bad], caplog)
        assert [i.id for i in left] != ["b1"] and len(left) == 1
        assert (left[0].checksum, left[0].os_hash_value) == ("c1", "h1")
        assert UPLOAD_MARKER not in left[0].user_properties
        assert "Burgos: Deleting leftover image b1 of an interrupted upload" in caplog.messages


def test_a_copy_of_a_live_run_is_left_alone(caplog):
    left = sync([image("b1", **{UPLOAD_MARKER: ALIVE})], caplog)
    assert [(i.id, i.user_properties[UPLOAD_MARKER]) for i in left] == [("b1", ALIVE)]


def test_a_dry_run_changes_nothing(caplog):
    left = sync([image("b1", **{UPLOAD_MARKER: DEAD})], caplog, dry_run=True)
    assert left[0].user_properties[UPLOAD_MARKER] == DEAD


def test_classify_splits_active_copies_by_verification():
    master = image("m1", region="Valladolid")
    images = [
        image("ok", **{UPLOAD_MARKER: DEAD}),
        image("bad", checksum="x", **{UPLOAD_MARKER: DEAD}),
        image("live", **{UPLOAD_MARKER: ALIVE}),
        image("plain"),
    ]
    found = classify(images, "tenant1id", RUNS, 3600, wanted={"a": master})
    assert [i.id for i in found.verified] == ["ok"]
    assert [i.id for i in found.leftovers] == ["bad"] and found.replaced() == {"bad"}
    assert classify(images, "tenant1id", RUNS, 3600).verified == []  # no masters: no verdict
