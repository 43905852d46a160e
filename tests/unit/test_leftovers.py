"""Leftovers of interrupted uploads are deleted by the next real sync (glancesync/leftovers.py).

The mock backend stands in for Glance: images carrying the upload marker and not active
are what a killed upload leaves; the real-Glance version is in tests/integration/test_faults.py.
"""

from __future__ import annotations

import logging

from glancesync.backends import make_backends
from glancesync.backends.glance import UPLOAD_MARKER
from glancesync.backends.mock import MockStore
from glancesync.config import load_config
from glancesync.engine import GlanceSync
from glancesync.image import Image
from glancesync.leftovers import leftovers

CONFIG = """
[main]
master_region = Valladolid
[master]
credential = user,cHc=,http://ks:5000/v3,tenant1
"""
MARK = {UPLOAD_MARKER: "in_progress"}


def image(name: str, id_: str, status: str = "active", owner: str = "tenant1id", **props) -> Image:
    return Image(
        name=name, id=id_, region="Burgos", owner=owner, is_public=True, checksum="c1",
        size=10, status=status, user_properties=dict(props),
    )  # fmt: skip


def test_only_marked_non_active_images_of_the_tenant_are_leftovers():
    images = [
        image("a", "1", "saving", **MARK),
        image("a", "2", "queued", **MARK),
        image("a", "3", "active", **MARK),  # verified but not unmarked: not ours to judge
        image("a", "4", "saving"),  # not created by glancesync
        image("a", "5", "saving", owner="someone-else", **MARK),
    ]
    assert [i.id for i in leftovers(images, "tenant1id")] == ["1", "2"]


def run(store: MockStore, dry_run: bool, caplog) -> list[str]:
    config = load_config(text=CONFIG, environ={})
    gs = GlanceSync(config, make_backends(config, environ={}, store=store))
    with caplog.at_level(logging.INFO, logger="GlanceSync-Client"):
        result = gs.sync_region("Burgos", dry_run=dry_run)
    assert not result.failed
    return [image.id for image in store.images("Burgos")]


def test_a_real_sync_deletes_leftovers_and_uploads_again(caplog):
    store = MockStore(
        {
            "Valladolid": [image("a", "m1").copy(region="Valladolid")],
            "Burgos": [image("a", "b1", "saving", **MARK), image("x", "b2", "queued", **MARK)],
        }
    )
    left = run(store, dry_run=False, caplog=caplog)
    assert "b1" not in left and "b2" not in left and len(left) == 1
    assert "Burgos: Deleting leftover image b1 of an interrupted upload" in caplog.messages
    assert "Burgos: Deleting leftover image b2 of an interrupted upload" in caplog.messages


def test_a_dry_run_deletes_nothing(caplog):
    store = MockStore(
        {
            "Valladolid": [image("a", "m1").copy(region="Valladolid")],
            "Burgos": [image("a", "b1", "saving", **MARK)],
        }
    )
    assert run(store, dry_run=True, caplog=caplog) == ["b1"]


def test_a_failed_delete_is_a_warning_and_the_sync_goes_on(caplog):
    store = MockStore(
        {
            "Valladolid": [image("a", "m1").copy(region="Valladolid")],
            "Burgos": [image("a", "b1", "saving", **MARK)],
        }
    )
    store.fail_on("Burgos", "delete", after=0, cause="server gone")
    left = run(store, dry_run=False, caplog=caplog)
    assert "b1" in left and len(left) == 2  # the leftover stays, the image is uploaded
    assert "Burgos: Deletion of image b1 Failed. Cause: server gone" in caplog.messages
