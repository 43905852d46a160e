"""The pure planning of issue 25: members of shared images, keep_old retention, and
the backup format that keeps them (glancesync.members, glancesync.retention)."""

from __future__ import annotations

import pytest

from glancesync.backends.csvfile import dump_backup, parse_fields
from glancesync.config import load_config
from glancesync.errors import ConfigError
from glancesync.image import RENAMED_AT, Image
from glancesync.members import (
    BY_NAME,
    NONE,
    SAME,
    MemberChanges,
    member_changes,
    members_mode,
    wanted_members,
)
from glancesync.retention import renamed_now, retention
from glancesync.status import metadata_differs


def test_members_mode_defaults_to_same_only_in_the_master_target():
    assert members_mode(None, True) == SAME
    assert members_mode(None, False) == NONE
    assert members_mode(BY_NAME, False) == BY_NAME


def test_wanted_members_same_by_name_and_none():
    master = {"p1": "accepted", "p2": "pending"}
    assert wanted_members(master, SAME) == (master, [])
    assert wanted_members(master, NONE) == ({}, [])
    got = wanted_members(master, BY_NAME, {"p1": "q1", "p2": None})
    assert got == ({"q1": "accepted"}, ["p2"])


def test_new_members_are_pending_unless_accepting():
    changes = member_changes({"a": "accepted", "b": "pending"}, {"b": "pending", "c": "x"}, False)
    assert changes == MemberChanges({"a": "pending"}, ("c",), {})
    assert changes.describe() == "add a; remove c"
    accepting = member_changes({"a": "accepted", "b": "accepted"}, {"b": "pending"}, True)
    assert accepting.add == {"a": "accepted"} and accepting.status == {"b": "accepted"}


def test_equal_members_are_no_change():
    assert not member_changes({"a": "accepted"}, {"a": "pending"}, False)


def test_shared_versus_private_is_a_metadata_difference():
    master = Image("i", "1", shared=True)
    assert metadata_differs(master, Image("i", "2"), frozenset())
    assert not metadata_differs(master, Image("i", "2", shared=True), frozenset())


def _old(id_: str, at: str | None, name: str = "x.old", owner: str = "t", **kw) -> Image:
    props = {RENAMED_AT: at} if at else {}
    return Image(name, id_, owner=owner, user_properties=props, **kw)


def test_retention_keeps_the_latest_renamed_per_name():
    images = [
        _old("1", "2026-01-01T00:00:00Z"),
        _old("2", "2026-03-01T00:00:00Z"),
        _old("3", "2025-01-01T00:00:00Z", protected=True),
        _old("4", None),  # made by a person: never a candidate
        _old("5", "2020-01-01T00:00:00Z", owner="other"),
        _old("6", "2024-01-01T00:00:00Z", name="b_obsolete"),
    ]
    plan = retention(images, "t", 1)
    assert [i.id for i in plan.delete] == ["1"]
    assert [i.id for i in plan.protected] == ["3"]
    assert [i.id for i in retention(images, "t", 0).delete] == ["6", "2", "1"]
    assert retention(images, "t", None).delete == []


def test_renamed_now_is_utc_iso():
    assert renamed_now().endswith("Z") and "T" in renamed_now()


def test_backup_keeps_visibility_and_members_as_reserved_properties():
    image = Image("i", "1", region="R", shared=True, members={"p": "pending"})
    line = dump_backup("R", [image])
    assert "'glancesync_visibility': 'shared'" in line
    assert "'glancesync_members': {'p': 'pending'}" in line
    fields = next(iter(__import__("csv").reader([line])))
    back = parse_fields(fields, "R")
    assert back.shared and back.members == {"p": "pending"} and back.user_properties == {}


CONFIG = """
[main]
master_region = R
[master]
credential = u,cA==,http://k:5000/v3,t
{extra}
"""


def test_options_members_accept_members_keep_old():
    target = load_config(text=CONFIG.format(extra=""), environ={}).master
    assert (target.members, target.accept_members, target.keep_old) == (None, False, None)
    extra = "members = by-name\naccept_members = true\nkeep_old = 0"
    target = load_config(text=CONFIG.format(extra=extra), environ={}).master
    assert (target.members, target.accept_members, target.keep_old) == (BY_NAME, True, 0)
    with pytest.raises(ConfigError, match="by-name"):
        load_config(text=CONFIG.format(extra="members = all"), environ={})
