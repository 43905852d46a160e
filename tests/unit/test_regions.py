"""Region lists (reference 7.3, worked example 12.7)."""

from __future__ import annotations

import pytest

from glancesync.errors import ConfigError
from glancesync.regions import RegionRef, expand_target, region_list

TARGETS = ["master", "other"]
CATALOG = {"master": ["m", "r1", "r2"], "other": ["r1"]}
PREFERRED = ["other:r1", "r2", "r3"]


def lister(ignore=None):
    ignore = ignore or {}
    return lambda t: expand_target(t, CATALOG[t], ignore.get(t, ()), "m")


def names(refs):
    return [r.full for r in refs]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["r2", "r1"]),
        (["master:", "other:"], ["other:r1", "r2", "r1"]),
        (["r1", "other:"], ["other:r1", "r1"]),
        (["r1", "r2", "other:r1"], ["r1", "r2", "other:r1"]),
        (["master:r1", "r1"], ["r1"]),
    ],
)
def test_region_lists_of_the_worked_example(args, expected):
    assert names(region_list(args, TARGETS, lister(), PREFERRED)) == expected


def test_ignore_regions_apply_to_expansions():
    refs = region_list([], TARGETS, lister({"master": ("r1",)}), PREFERRED)
    assert names(refs) == ["r2"]


def test_unknown_target_prefix_is_a_configuration_error():
    with pytest.raises(ConfigError, match="unknown target 'nope'"):
        region_list(["nope:x"], TARGETS, lister(), PREFERRED)
    with pytest.raises(ConfigError):
        region_list(["nope:"], TARGETS, lister(), PREFERRED)


def test_full_names():
    assert RegionRef("master", "Burgos").full == "Burgos"
    assert RegionRef("other", "Madrid").full == "other:Madrid"
