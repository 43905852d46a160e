"""A dry-run prints the warnings the real run would print (issue 11, item 6; reference 7.5).

An operator reads the dry-run to decide whether to sync: a warning that only the real
run shows (a kernel that will be missing, reference 6.3) comes too late.
"""

from __future__ import annotations

import logging

import pytest

from glancesync.backends import make_backends
from glancesync.backends.mock import MockStore
from glancesync.config import load_config
from glancesync.engine import GlanceSync
from glancesync.image import Image
from tests.support.scenarios import SCENARIOS, load_scenario

CONFIG = """
[main]
master_region = Valladolid

[master]
credential = user,ZmFrZXBhc3N3b3JkLG9mY291cnNl,http://server:5000/v3,tenant1
metadata_set = nid, type
"""


def master(name: str, image_id: str, size: int, props: dict) -> Image:
    return Image(
        name=name,
        id=image_id,
        owner="tenant1id",
        is_public=True,
        checksum=f"c{image_id}",
        size=size,
        user_properties=props,
    )


def warnings_of(log_lines, gs: GlanceSync, region: str, dry_run: bool) -> list[str]:
    logged = log_lines(gs.log)
    gs.sync_region(region, dry_run=dry_run)
    return [line for line in logged.lines if line.startswith("WARNING:")]


def ami_world() -> GlanceSync:
    """12.3: ami1 absent from Burgos; kern1 not synchronisable ({}), ramd1 uploaded after
    ami1 (bigger): the real run warns about both references of ami1."""
    images = [
        master("kern1", "011", 1000, {}),
        master("ramd1", "012", 1001, {"type": "ramdisk"}),
        master("ami1", "013", 900, {"type": "app", "kernel_id": "011", "ramdisk_id": "012"}),
    ]
    config = load_config(text=CONFIG, environ={})
    store = MockStore({"Valladolid": images, "Burgos": []})
    log = logging.getLogger("dry-run-warnings")
    log.setLevel(logging.INFO)
    return GlanceSync(config, make_backends(config, environ={}, store=store), log)


def test_dry_run_warns_about_references_it_cannot_resolve(log_lines):
    expected = [
        "WARNING:Burgos: Not found kern1 on region. It should be kernel_id of image ami1",
        "WARNING:Burgos: Not found ramd1 on region. It should be ramdisk_id of image ami1",
    ]
    real = warnings_of(log_lines, ami_world(), "Burgos", dry_run=False)
    assert set(real) == set(expected)
    assert warnings_of(log_lines, ami_world(), "Burgos", dry_run=True) == real


@pytest.mark.parametrize("name", SCENARIOS)
def test_dry_run_and_real_run_warn_alike_in_every_scenario(name, log_lines):
    dry, _, regions = load_scenario(name)
    real, _, _ = load_scenario(name)
    for region in regions:
        planned = warnings_of(log_lines, dry, region, True)
        assert planned == warnings_of(log_lines, real, region, False), region
