"""Which member changes a region gets (glancesync.sharing.member_plans), with a fake
backend: only shared copies are asked for members, and accept_members asks first
whether the credentials may set statuses (one warning per region otherwise)."""

from __future__ import annotations

from glancesync.config import load_config
from glancesync.image import Image
from glancesync.sharing import MasterMembers, member_plans

CONFIG = """[main]
master_region = Valladolid
[master]
credential = user,cGFzcw==,http://server:5000/v3,tenant1
accept_members = true
"""


class FakeBackend:
    def __init__(self, members: dict[str, dict[str, str]], admin: bool = True) -> None:
        self.members, self.admin, self.asked = members, admin, []

    def full_name(self, region: str) -> str:
        return region

    def image_members(self, region: str, image_id: str) -> dict[str, str]:
        self.asked.append(image_id)
        return dict(self.members.get(image_id, {}))

    def may_set_member_status(self) -> bool:
        return self.admin


def image(image_id: str, shared: bool = True) -> Image:
    return Image(
        name="img",
        id=image_id,
        region="r",
        owner="t",
        is_public=False,
        checksum="c1",
        size=1,
        status="active",
        shared=shared,
    )


def plans(region_copy: Image, admin: bool = True):
    target = load_config(text=CONFIG, environ={}).targets["master"]
    master = FakeBackend({"m": {"p1": "accepted"}})
    region = FakeBackend({region_copy.id: {"p1": "pending"}}, admin)
    found = member_plans(
        MasterMembers(master, "Valladolid"),
        region,
        "Burgos",
        {"img": image("m")},
        {"img": region_copy},
        target,
    )
    return found, region.asked


def test_an_admin_copies_the_master_status():
    (changes, warnings), asked = plans(image("c"))
    assert changes["img"].status == {"p1": "accepted"} and warnings == []
    assert asked == ["c"]


def test_without_admin_one_warning_and_no_status_change():
    (changes, warnings), _ = plans(image("c"), admin=False)
    assert not changes["img"]
    assert len(warnings) == 1 and "they are not admin" in warnings[0]


def test_a_private_copy_is_not_asked_for_members():
    (changes, _), asked = plans(image("c", shared=False))
    assert asked == [] and changes["img"].add == {"p1": "accepted"}
