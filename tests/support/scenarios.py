"""The scenarios of tests/scenarios: a mock store, a configuration and the expected
statuses, outcomes and logs of each region (tests/scenarios/README.md)."""

from __future__ import annotations

import logging
from pathlib import Path

from glancesync.backends import make_backends
from glancesync.backends.mock import MockStore
from glancesync.config import load_config
from glancesync.engine import GlanceSync

ROOT = Path(__file__).resolve().parents[1] / "scenarios"


DEFAULT_CONFIG = """
[main]
master_region = Valladolid

[master]
credential = user,ZmFrZXBhc3N3b3JkLG9mY291cnNl,http://server:5000/v3,tenant1
metadata_set = nid, type

[other]
credential = user2,ZmFrZXBhc3N3b3JkLG9mY291cnNl,http://server2:5000/v3,tenant2
metadata_set = type
metadata_condition = image.is_public and 'type' in image.user_properties and
    image.user_properties['type'] == 'baseimage'
"""


SCENARIOS = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and "." not in p.name)


def load_scenario(name: str) -> tuple[GlanceSync, MockStore, list[str]]:
    folder = ROOT / name
    config_file = folder / "config"
    text = config_file.read_text() if config_file.exists() else DEFAULT_CONFIG
    config = load_config(text=text, environ={})
    store = MockStore.load(str(folder))
    log = logging.getLogger("scenario")
    log.setLevel(logging.INFO)
    gs = GlanceSync(config, make_backends(config, environ={}, store=store), log)
    regions = sorted(p.stem for p in (ROOT / f"{name}.status_pre").glob("*.csv"))
    return gs, store, regions
