"""Statuses, rules and plans of converted copies (issue 23 item 2; README "Converting images").

A converted copy is judged by ``glancesync_source_checksum`` (the master checksum it came
from) and its format, never by its own checksum; the rules look that checksum up too.
"""

from __future__ import annotations

import pytest

from glancesync import planner as pl
from glancesync import report
from glancesync import status as st
from glancesync.config import Target, load_config
from glancesync.converted import (
    CONVERTED_MD5,
    SOURCE_CHECKSUM,
    conversion_of,
    rule_checksum,
    upload_properties,
)
from glancesync.errors import ConfigError
from glancesync.image import Image
from glancesync.planner import plan_region
from glancesync.status import region_status

M = "m" * 32  # the master's checksum
OLD = "o" * 32  # an earlier master's checksum


def target(convert_to: str = "raw", **rules) -> Target:
    return Target(
        name="master", convert_to=convert_to, **{k: frozenset(v) for k, v in rules.items()}
    )


def master(fmt: str = "qcow2", checksum: str = M, **props) -> Image:
    return Image(
        "img",
        "mid",
        is_public=True,
        checksum=checksum,
        size=10,
        disk_format=fmt,
        user_properties=props,
    )


def copy(fmt: str = "raw", source: str | None = M, checksum: str = "r" * 32, **props) -> Image:
    if source is not None:
        props = {SOURCE_CHECKSUM: source, CONVERTED_MD5: checksum, **props}
    return Image(
        "img",
        "rid",
        is_public=True,
        checksum=checksum,
        size=20,
        disk_format=fmt,
        user_properties=props,
    )


def one(m: Image, region: Image | None, t: Target) -> st.ImageStatus:
    region_map = {} if region is None else {"img": region}
    return region_status({"img": m}, region_map, t).images[0]


@pytest.mark.parametrize(
    ("fmt", "convert_to", "checksum", "expected"),
    [
        ("qcow2", "raw", M, "raw"),
        ("vhd", "qcow2", M, "qcow2"),
        ("raw", "qcow2", M, "qcow2"),
        ("vmdk", "raw", M, "raw"),
        ("raw", "raw", M, ""),  # already in the wanted format: a plain copy
        ("iso", "raw", M, ""),  # not convertible
        ("qcow2", "", M, ""),  # target converts nothing
        ("qcow2", "raw", "", ""),  # no checksum to record as the source
    ],
)
def test_which_images_are_converted(fmt, convert_to, checksum, expected):
    assert conversion_of(master(fmt, checksum), convert_to) == expected


def test_absent_image_is_uploaded_converted():
    s = one(master(), None, target())
    assert (s.status, s.convert_to) == (st.PENDING_UPLOAD, "raw")


def test_converted_copy_of_the_current_master_is_ok():
    assert one(master(), copy(), target()).status == st.OK


def test_converted_copy_of_an_older_master_follows_the_rules_by_its_source_checksum():
    stale = copy(source=OLD)
    assert rule_checksum(stale) == OLD
    assert one(master(), stale, target()).status == st.ERROR_CHECKSUM
    assert one(master(), stale, target(rename={OLD})).status == st.PENDING_RENAME
    assert one(master(), stale, target(replace={OLD})).status == st.PENDING_REPLACE
    assert one(master(), stale, target(dontupdate={OLD})).status == st.OK_STALLED
    # the copy's own checksum is not what the rules look up
    assert one(master(), stale, target(dontupdate={stale.checksum})).status == st.ERROR_CHECKSUM
    assert one(master(), stale, target(rename={"any"})).status == st.PENDING_RENAME


def test_copy_in_another_format_is_different_content():
    plain = Image("img", "rid", is_public=True, checksum=M, size=10, disk_format="qcow2")
    s = one(master(), plain, target())
    assert s.status == st.ERROR_CHECKSUM
    message = report.status_message(s)
    assert "qcow2" in message and "raw" in message
    assert one(master(), plain, target(replace={M})).status == st.PENDING_REPLACE
    # a converted copy in the other target format: its source is current, its format not
    assert one(master(), copy(fmt="qcow2"), target()).status == st.ERROR_CHECKSUM


def test_plain_targets_are_unchanged():
    plain = Image("img", "rid", is_public=True, checksum=M, size=10, disk_format="qcow2")
    assert one(master(), plain, target("")).status == st.OK
    assert one(master(fmt="raw"), plain.copy(disk_format="raw"), target("raw")).status == st.OK


def test_signatures_are_neither_compared_nor_copied():
    signed = master(img_signature="sig", img_signature_hash_method="SHA-256", os_distro="x")
    assert one(signed, copy(os_distro="x"), target()).status == st.OK
    assert one(signed, copy(os_distro="y"), target()).status == st.PENDING_METADATA
    status = region_status({"img": signed}, {}, target())
    upload = plan_region("R", status, target()).actions[0]
    assert (upload.kind, upload.convert_to) == (pl.UPLOAD, "raw")
    assert upload.properties == {"os_distro": "x"}
    props = upload_properties({"img_signature": "s", "a": 1}, signed, "c" * 32)
    assert props == {"a": 1, SOURCE_CHECKSUM: M, CONVERTED_MD5: "c" * 32}
    # a plain copy keeps them
    status = region_status({"img": signed}, {}, target(""))
    assert "img_signature" in plan_region("R", status, target("")).actions[0].properties


def test_messages_name_the_formats():
    assert "raw" in report.status_message(one(master(), None, target()))
    stale = one(master(), copy(source=OLD), target(rename={OLD}))
    assert OLD in report.status_message(stale)


def test_option_is_validated():
    base = "[main]\nmaster_region = Spain2\n[master]\ncredential = u,cA==,http://k/v3,t\n"
    assert load_config(base + "convert_to = RAW\n", environ={}).master.convert_to == "raw"
    assert load_config(base, environ={}).master.convert_to == ""
    with pytest.raises(ConfigError, match="convert_to"):
        load_config(base + "convert_to = vmdk\n", environ={})


def test_mock_backend_simulates_the_conversion():
    """Offline (mock backend, no image data): a converted copy, ok on the next run."""
    from glancesync.backends import make_backends
    from glancesync.backends.mock import MockStore
    from glancesync.engine import GlanceSync

    text = (
        "[main]\nmaster_region = Valladolid\n[master]\n"
        "credential = user,ZmFrZXBhc3N3b3JkLG9mY291cnNl,http://server:5000/v3,tenant1\n"
        "convert_to = raw\n"
    )
    config = load_config(text, environ={})
    image = master(img_signature="s").copy(owner="tenant1id")
    store = MockStore({"Valladolid": [image], "Burgos": []})
    gs = GlanceSync(config, make_backends(config, environ={}, store=store))
    assert not gs.sync_region("Burgos").failed
    (copy_,) = store.images("Burgos")
    assert copy_.disk_format == "raw"
    assert copy_.user_properties[SOURCE_CHECKSUM] == M
    assert copy_.user_properties[CONVERTED_MD5] == copy_.checksum != M
    assert "img_signature" not in copy_.user_properties
    assert [s.status for s in gs.region_statuses("Burgos").images] == [st.OK]
