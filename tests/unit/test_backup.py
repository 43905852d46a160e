"""--make-backup (reference 7.6) and its round trip through the mock (8.2)."""

from __future__ import annotations

import logging
import os
import re

import pytest

from glancesync.backends.mock import MockBackend, MockStore
from glancesync.backup import make_backup
from glancesync.config import Target
from glancesync.credentials import Connection
from glancesync.image import Image

LOGGER = "GlanceSync-Client"


def image(n: int, region: str, **changes) -> Image:
    return Image(
        name=f"image{n:02d}",
        id=f"{n:03d}",
        region=region,
        owner="tenant1id" if n % 3 else "",
        is_public=n % 2 == 1,
        checksum=f"c{n}" if n != 4 else "",
        size=1073741824 + 10 * (n - 1),
        status="active" if n != 5 else "queued",
        user_properties={"type": "ngimages", "nid": n} if n % 2 else {"name, with": "a \"q\" 'x'"},
    ).copy(**changes)


@pytest.fixture
def store() -> MockStore:
    return MockStore(
        {
            "Valladolid": [image(n, "Valladolid") for n in range(1, 7)],
            "Burgos": [image(3, "Burgos", id="b3"), image(1, "Burgos", id="b1")],
            "other:Madrid": [],
        }
    )


@pytest.fixture
def backends(store):
    return {
        "master": MockBackend(
            Target(name="master", connection=Connection("", tenant="tenant1")), store
        ),
        "other": MockBackend(
            Target(name="other", connection=Connection("", tenant="tenant2")), store
        ),
    }


def run(backends, regions, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    return make_backup(
        backends, regions, "Valladolid", logging.getLogger(LOGGER), folder_parent=str(tmp_path)
    )


def test_backup_round_trips_through_the_mock(store, backends, tmp_path, caplog):
    folder, failed = run(backends, [("master", "Burgos"), ("other", "Madrid")], tmp_path, caplog)
    assert not failed
    assert re.fullmatch(
        r"backup_glance_\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?", os.path.basename(folder)
    )
    assert os.path.dirname(folder) == str(tmp_path)
    assert sorted(os.listdir(folder)) == [
        "backup_Burgos.csv",
        "backup_Valladolid.csv",
        "backup_other:Madrid.csv",
    ]
    assert MockStore.load(folder).snapshot() == store.snapshot()
    assert [r.getMessage() for r in caplog.records] == [
        "Backup of region Burgos",
        "Backup of region other:Madrid",
        "Backup of region Valladolid",
    ]
    assert {r.levelname for r in caplog.records} == {"INFO"}


def test_each_region_once_and_master_not_repeated(backends, tmp_path, caplog):
    regions = [("master", "Valladolid"), ("master", "Burgos"), ("master", "Burgos")]
    _, failed = run(backends, regions, tmp_path, caplog)
    assert not failed
    assert [r.getMessage() for r in caplog.records] == [
        "Backup of region Valladolid",
        "Backup of region Burgos",
    ]


def test_failing_region_is_logged_and_the_others_go_on(store, backends, tmp_path, caplog):
    store.fail_on("Burgos", "list", cause="boom")
    regions = [("master", "Burgos"), ("other", "Nowhere"), ("other", "Madrid")]
    folder, failed = run(backends, regions, tmp_path, caplog)
    assert failed
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "Burgos:Error retrieving images from region. Cause boom",
        "other:Nowhere:Error retrieving images from region. Cause region not found",
    ]
    assert sorted(os.listdir(folder)) == ["backup_Valladolid.csv", "backup_other:Madrid.csv"]
