"""Table-driven tests of the pure functions of the sync algorithm (issue 11, item 8).

Each table is a section of reference written as rows: conflict rules (5.3, 12.2),
metadata comparison (5.4), AMI checks (5.5) and their mapping to statuses, the
properties a metadata update writes (6.5, 12.6), kernel/ramdisk references fixed after a
later upload (reference 6.3), and obsolete updates (6.2, 12.4). The scenarios replay whole regions;
these pin each rule on its own, so a failure names the rule.
"""

from __future__ import annotations

import pytest

from glancesync import planner as pl
from glancesync import status as st
from glancesync.config import Target
from glancesync.image import Image
from glancesync.obsolete import obsolete_updates
from glancesync.planner import plan_region, updated_properties
from glancesync.selection import Catalogue
from glancesync.status import ami_check, conflict_status, metadata_differs, region_status

TENANT = "tenant1id"


def target(**options) -> Target:
    sets = {k: frozenset(v) for k, v in options.items() if k != "obsolete_syncprops"}
    syncprops = tuple(options.get("obsolete_syncprops", ()))
    return Target(name="master", obsolete_syncprops=syncprops, **sets)


def image(name="img", image_id="1", checksum="c", public=True, size=100, **props) -> Image:
    return Image(
        name=name,
        id=image_id,
        owner=TENANT,
        is_public=public,
        checksum=checksum,
        size=size,
        user_properties=props,
    )


# --- 5.3 conflict rules (12.2: region checksum x, master checksum m) --------------------

CONFLICTS = [
    # dontupdate, rename, replace, status
    ({"x"}, {"any"}, {"any"}, st.OK_STALLED),
    (set(), {"x"}, {"x"}, st.PENDING_RENAME),
    (set(), {"any"}, {"x"}, st.PENDING_REPLACE),
    (set(), {"x"}, {"any"}, st.PENDING_RENAME),
    (set(), {"any"}, {"any"}, st.PENDING_RENAME),
    (set(), set(), {"any"}, st.PENDING_REPLACE),
    ({"any"}, set(), set(), st.ERROR_CHECKSUM),
    (set(), {"m"}, {"m"}, st.ERROR_CHECKSUM),
    (set(), set(), set(), st.ERROR_CHECKSUM),
    ({"x"}, {"x"}, {"x"}, st.OK_STALLED),
    (set(), set(), {"x"}, st.PENDING_REPLACE),
    (set(), {"any"}, set(), st.PENDING_RENAME),
    ({"y"}, {"y"}, {"y"}, st.ERROR_CHECKSUM),
]


@pytest.mark.parametrize("dontupdate, rename, replace, expected", CONFLICTS)
def test_conflict_status(dontupdate, rename, replace, expected):
    rules = target(dontupdate=dontupdate, rename=rename, replace=replace)
    assert conflict_status("x", rules) == expected


# --- 5.4 metadata comparison of images with the same content ----------------------------

METADATA = [
    # master (public, props), region (public, props), metadata_set, differs
    ((True, {"type": "a"}), (True, {"type": "a"}), set(), False),
    ((True, {"type": "a"}), (False, {"type": "a"}), set(), True),  # visibility
    ((False, {}), (True, {}), {"type"}, True),  # visibility, whatever metadata_set
    ((True, {"type": "a"}), (True, {"type": "b"}), set(), True),
    ((True, {"type": "a"}), (True, {"type": "a", "local": "x"}), set(), True),  # key sets
    ((True, {"type": "a"}), (True, {"type": "a", "local": "x"}), {"type"}, False),  # local
    ((True, {"nid": "3"}), (True, {"nid": "2"}), {"type"}, False),  # nid not compared
    ((True, {"nid": "3"}), (True, {"nid": "2"}), {"nid", "type"}, True),
    ((True, {"type": "a"}), (True, {}), {"type"}, True),  # missing on one side
    ((True, {}), (True, {"type": "a"}), {"type"}, True),
    ((True, {}), (True, {}), {"type"}, False),  # missing on both sides
    ((True, {"kernel_id": "k"}), (True, {"kernel_id": "999"}), set(), False),  # AMI check's
    ((True, {"kernel_id": "k"}), (True, {"kernel_id": "999"}), {"type"}, False),
    ((True, {"kernel_id": "k"}), (True, {}), {"type"}, True),  # present on one side only
    ((True, {}), (True, {"ramdisk_id": "r"}), {"type"}, True),
    ((True, {}), (True, {"ramdisk_id": "r"}), set(), True),
    (
        (True, {"type": "a", "ramdisk_id": "r"}),
        (True, {"type": "a", "ramdisk_id": "2"}),
        set(),
        False,
    ),
]


@pytest.mark.parametrize("master, region, metadata_set, differs", METADATA)
def test_metadata_differs(master, region, metadata_set, differs):
    m = image(public=master[0], **master[1])
    r = image(image_id="2", public=region[0], **region[1])
    assert metadata_differs(m, r, frozenset(metadata_set)) is differs


# --- 5.5 AMI check -----------------------------------------------------------------------

KERNEL = image("kern1", "111")
AMI = [
    # master kernel_id, region kernel_id, kern1 in map?, kern1 pending?, result
    (None, None, False, False, "ready"),
    (None, "111", True, False, "update"),  # the property will be removed
    ("kern1", "111", True, False, "ready"),
    ("kern1", "222", True, False, "update"),
    ("kern1", None, True, False, "update"),
    ("kern1", "111", False, True, "pending"),
    ("kern1", "111", False, False, "missing"),
]


@pytest.mark.parametrize("wanted, has, in_map, pending, result", AMI)
def test_ami_check_of_one_property(wanted, has, in_map, pending, result):
    master = image("ami1", **({"kernel_id": wanted} if wanted else {}))
    region = image("ami1", "113", **({"kernel_id": has} if has else {}))
    region_map = {"kern1": KERNEL} if in_map else {}
    outcome, waits, missing = ami_check(
        master, region, region_map, frozenset({"kern1"} if pending else ())
    )
    assert outcome == result
    assert waits == (["kern1"] if result == "pending" else [])
    assert missing == (["kern1"] if result == "missing" else [])


COMBINED = [
    # kernel result, ramdisk result -> combined (5.5: equal -> that; missing; pending; update)
    ("ready", "ready", "ready"),
    ("update", "update", "update"),
    ("ready", "update", "update"),
    ("update", "pending", "pending"),
    ("pending", "missing", "missing"),
    ("missing", "ready", "missing"),
    ("ready", "pending", "pending"),
]
_SETUP = {
    # result: (master value, region value, in map, pending)
    "ready": ("K", "id-K", True, False),
    "update": ("K", "old", True, False),
    "pending": ("K", "id-K", False, True),
    "missing": ("K", "id-K", False, False),
}


@pytest.mark.parametrize("kernel, ramdisk, combined", COMBINED)
def test_ami_check_combined(kernel, ramdisk, combined):
    props_m, props_r, region_map, pending = {}, {}, {}, set()
    for prop, result, ref in (("kernel_id", kernel, "kern"), ("ramdisk_id", ramdisk, "ramd")):
        _, value, in_map, is_pending = _SETUP[result]
        props_m[prop] = ref
        props_r[prop] = f"id-{ref}" if value == "id-K" else value
        if in_map:
            region_map[ref] = image(ref, f"id-{ref}")
        if is_pending:
            pending.add(ref)
    outcome, _, _ = ami_check(
        image("ami", **props_m), image("ami", "9", **props_r), region_map, frozenset(pending)
    )
    assert outcome == combined


# phase A result x AMI result -> status (5.5, second table), through region_status
STATUS_MAP = [
    ("equal", "ready", st.OK),
    ("equal", "update", st.PENDING_METADATA),
    ("equal", "pending", st.PENDING_AMI),
    ("equal", "missing", st.ERROR_AMI),
    ("differs", "ready", st.PENDING_METADATA),
    ("differs", "update", st.PENDING_METADATA),
    ("differs", "pending", st.PENDING_AMI),
    ("differs", "missing", st.ERROR_AMI),
]


@pytest.mark.parametrize("phase_a, ami, expected", STATUS_MAP)
def test_status_of_phase_a_and_ami_results(phase_a, ami, expected):
    kernel_master = image("kern1", "011", checksum="ck", size=10, type="kernel")
    ami_master = image("ami1", "013", checksum="ca", size=50, type="app", kernel_id="kern1")
    region_type = "app" if phase_a == "equal" else "other"
    kernel_id = "111" if ami in ("ready", "pending", "missing") else "999"
    region_ami = image("ami1", "113", checksum="ca", type=region_type, kernel_id=kernel_id)
    region_map = {"ami1": region_ami}
    wanted = {"ami1": ami_master}
    if ami in ("ready", "update"):
        region_map["kern1"] = image("kern1", "111", checksum="ck", type="kernel")
        wanted["kern1"] = kernel_master
    elif ami == "pending":
        wanted["kern1"] = kernel_master  # absent from the region: pending_upload
    result = region_status(wanted, region_map, target(metadata_set={"type"}))
    assert result.by_name()["ami1"].status == expected


def test_a_kernel_being_replaced_is_not_ready_for_its_users():
    """5.5: "in the region map" is after phase A removals: a kernel pending_replace makes
    the image that references it pending_ami, never ok."""
    wanted = {
        "kern1": image("kern1", "011", checksum="ck", size=10),
        "ami1": image("ami1", "013", checksum="ca", size=50, kernel_id="kern1"),
    }
    region_map = {
        "kern1": image("kern1", "111", checksum="old", size=10),
        "ami1": image("ami1", "113", checksum="ca", size=50, kernel_id="111"),
    }
    result = region_status(wanted, region_map, target(replace={"old"}))
    assert [(s.name, s.status) for s in result.images] == [
        ("kern1", st.PENDING_REPLACE),
        ("ami1", st.PENDING_AMI),
    ]
    assert result.by_name()["ami1"].waits_for == ["kern1"]
    assert "kern1" not in result.region_map


# --- 6.5 / 12.6 properties written by a metadata update ---------------------------------

UPDATES = [
    # master props, region props, metadata_set, written
    (
        {"type": "b", "nid": "3"},
        {"type": "b", "nid": "2", "local": "x"},
        {"nid", "type"},
        {"type": "b", "nid": "3", "local": "x"},
    ),
    (
        {"type": "b", "nid": "3"},
        {"type": "b", "nid": "2", "local": "x"},
        set(),
        {"type": "b", "nid": "3"},
    ),
    ({"type": "b"}, {"type": "b", "nid": "2"}, {"nid", "type"}, {"type": "b"}),  # removed
    ({"type": "b"}, {"nid": "2", "local": "x"}, {"type"}, {"nid": "2", "local": "x", "type": "b"}),
    ({}, {"local": "x"}, set(), {}),
    ({"type": "b", "kernel_id": "kern1"}, {"type": "b", "kernel_id": "111"}, set(), {"type": "b"}),
    ({"type": "b"}, {"type": "b", "ramdisk_id": "9"}, {"type"}, {"type": "b"}),
]


@pytest.mark.parametrize("master, region, metadata_set, written", UPDATES)
def test_updated_properties(master, region, metadata_set, written):
    """kernel_id/ramdisk_id are never among them: the executor resolves those by name."""
    m, r = image(**master), image(image_id="2", **region)
    assert updated_properties(m, r, frozenset(metadata_set)) == written


# --- reference 6.3: references to images uploaded later in the run -----------------------

LATE = [
    # sizes of (ami1, kern1), kern1 in the region?, late update_ami for ami1?
    ((900, 1000), False, True),  # ami1 uploaded first, kern1 after it
    ((2000, 1000), False, False),  # kern1 uploaded first: resolved at upload time
    ((900, 1000), True, False),  # kern1 already in the region
]


@pytest.mark.parametrize("sizes, kernel_in_region, late", LATE)
def test_late_kernel_references(sizes, kernel_in_region, late):
    ami_size, kernel_size = sizes
    wanted = {
        "ami1": image("ami1", "013", checksum="ca", size=ami_size, type="app", kernel_id="kern1"),
        "kern1": image("kern1", "011", checksum="ck", size=kernel_size, type="kernel"),
    }
    region_map = {}
    if kernel_in_region:
        region_map["kern1"] = image("kern1", "111", checksum="ck", size=kernel_size, type="kernel")
    rules = target(metadata_set={"type"})
    plan = plan_region("Burgos", region_status(wanted, region_map, rules), rules)
    late_updates = [a.name for a in plan.actions if a.kind == pl.UPDATE_AMI]
    assert late_updates == (["ami1"] if late else [])
    uploads = [a.name for a in plan.actions if a.kind == pl.UPLOAD]
    assert uploads == sorted(uploads, key=lambda n: (wanted[n].size, n))  # pass 2 order
    if late:
        assert plan.actions[-1].ami_refs == {"kernel_id": "kern1"}


def test_a_reference_never_uploaded_gets_no_late_update():
    """The kernel is neither in the region nor uploaded (not synchronisable): reference 6.3 leaves
    the property out with a warning; there is nothing to fix later in the run."""
    wanted = {"ami1": image("ami1", "013", checksum="ca", type="app", kernel_id="kern1")}
    rules = target(metadata_set={"type"})
    plan = plan_region("Burgos", region_status(wanted, {}, rules), rules)
    assert [a.kind for a in plan.actions] == [pl.UPLOAD]


# --- 6.2 / 12.4 obsolete updates ---------------------------------------------------------

OBSOLETE_MASTER = image(
    "ubuntu_obsolete", "021", checksum="cu", public=False, type="baseimage", sdc_aware="true"
)
OBSOLETE = [
    # region image (name, checksum, owner, status, public, props) -> (new name, public, props)
    (
        ("ubuntu", "cu", TENANT, "active", True, {"sdc_aware": "false", "local": "x"}),
        ("ubuntu_obsolete", False, {"sdc_aware": "true", "local": "x"}),
    ),
    (
        ("ubuntu", "cu", "", "active", True, {}),  # empty owner is the tenant's
        ("ubuntu_obsolete", False, {"sdc_aware": "true"}),
    ),
    (
        ("ubuntu_obsolete", "cu", TENANT, "active", True, {"sdc_aware": "true"}),
        ("ubuntu_obsolete", False, {"sdc_aware": "true"}),
    ),  # visibility only
    (
        ("ubuntu_obsolete", "cu", TENANT, "active", False, {"sdc_aware": "false"}),
        ("ubuntu_obsolete", False, {"sdc_aware": "true"}),
    ),  # a syncprop only
    (
        ("ubuntu_obsolete", "cu", TENANT, "active", False, {"sdc_aware": "true", "a": "1"}),
        None,
    ),  # nothing changed
    (("ubuntu", "cx", TENANT, "active", True, {}), None),  # other content
    (("ubuntu", "cu", "tenantXid", "active", True, {}), None),  # other tenant
    (("ubuntu", "cu", TENANT, "queued", True, {}), None),  # not active
    (("debian", "cu", TENANT, "active", True, {}), None),  # no such obsolete master
]


@pytest.mark.parametrize("region, update", OBSOLETE)
def test_obsolete_update(region, update):
    name, checksum, owner, status, public, props = region
    found = Image(
        name=name,
        id="121",
        owner=owner,
        is_public=public,
        checksum=checksum,
        status=status,
        user_properties=props,
    )
    catalogue = Catalogue({OBSOLETE_MASTER.name: OBSOLETE_MASTER})
    rules = target(obsolete_syncprops=["sdc_aware"])
    updates, warnings = obsolete_updates(catalogue, {}, [found], rules, TENANT)
    assert warnings == []
    got = [(u.name, u.is_public, u.properties) for u in updates]
    assert got == ([update] if update else [])
    assert all(u.image is found for u in updates)


def test_obsolete_master_ignored_when_its_base_is_synchronisable():
    base = image("ubuntu", "031", checksum="cn", type="baseimage")
    catalogue = Catalogue({OBSOLETE_MASTER.name: OBSOLETE_MASTER, "ubuntu": base})
    found = image("ubuntu", "121", checksum="cu")
    updates, warnings = obsolete_updates(catalogue, {"ubuntu": base}, [found], target(), TENANT)
    assert updates == []
    assert warnings == [
        "Ignore obsolete master image ubuntu_obsolete because ubuntu exists and it is "
        "synchronisable."
    ]


def test_duplicate_region_images_each_get_their_obsolete_update():
    first = image("ubuntu", "121", checksum="cu")
    second = image("ubuntu", "122", checksum="cu", local="y")
    catalogue = Catalogue({OBSOLETE_MASTER.name: OBSOLETE_MASTER})
    updates, _ = obsolete_updates(catalogue, {}, [first, second], target(), TENANT)
    assert [(u.image.id, u.name) for u in updates] == [
        ("121", "ubuntu_obsolete"),
        ("122", "ubuntu_obsolete"),
    ]
