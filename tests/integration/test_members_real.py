"""Members of shared images over the real Keystone and Glance (issue 25 item 1).

Trento shares the master's Keystone: its copies get the same project ids
(``members = same``, the default there). Madrid is the region of a second Keystone
(target ``other``): with ``members = by-name`` each member is mapped by project and domain
name; a project missing there is a warning for that image only.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

import pytest
from fixtures_glance import MASTER, region_images, unique

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_glance")]


@pytest.fixture
def make_project(tb_info, os_session) -> Callable[..., str]:
    """Factory: a project (domain Default) in a testbed Keystone; its id. Deleted at the end."""
    made: list[tuple[str, str]] = []

    def make(keystone: str, name: str) -> str:
        url = tb_info["keystones"][keystone]["url"]
        body = {"project": {"name": name, "domain_id": "default"}}
        response = os_session(keystone).post(f"{url}/projects", json=body)
        project_id = response.json()["project"]["id"]
        made.append((keystone, project_id))
        return project_id

    yield make
    for keystone, project_id in made:
        url = tb_info["keystones"][keystone]["url"]
        os_session(keystone).delete(f"{url}/projects/{project_id}", raise_exc=False)


def add_shared(glance, name: str, members: list[str], **fields: Any) -> dict[str, Any]:
    """A ``shared`` master image with these members (Glance adds them ``pending``)."""
    client = glance(MASTER)
    record = client.images.create(
        name=name, visibility="shared", disk_format="raw", container_format="bare", **fields
    )
    client.images.upload(record["id"], io.BytesIO(os.urandom(2048)), image_size=2048)
    for project in members:
        client.image_members.create(record["id"], project)
    return dict(client.images.get(record["id"]))


def members_of(client: Any, image_id: str) -> dict[str, str]:
    return {m["member_id"]: m["status"] for m in client.image_members.list(image_id)}


def entry_of(gs: Any, region: str, name: str) -> dict[str, Any]:
    return next(e for e in gs.image_report(region) if e["name"] == name)


def test_shared_image_reaches_both_targets_with_its_members(engine, glance, make_project):
    both, only_here = unique("proj"), unique("proj")
    p_both = make_project("keystone-1", both)
    p_only = make_project("keystone-1", only_here)
    p_both_madrid = make_project("keystone-2", both)
    made = add_shared(glance, unique("shared"), [p_both, p_only])
    force = f"forcesyncs = {made['id']}\n"
    gs, log = engine(master=force, other=force + "members = by-name\n")

    assert not gs.sync_region("Trento").failed, log.lines
    copy = region_images(glance("Trento"))[made["name"]]
    assert copy["visibility"] == "shared"
    assert members_of(glance("Trento"), copy["id"]) == {p_both: "pending", p_only: "pending"}

    log.clear()
    assert not gs.sync_region("other:Madrid").failed, log.lines
    copy = region_images(glance("Madrid"))[made["name"]]
    assert copy["visibility"] == "shared"
    assert members_of(glance("Madrid"), copy["id"]) == {p_both_madrid: "pending"}
    assert (
        log.lines.count(
            f"WARNING:other:Madrid: image {made['name']} is shared with project {p_only}, "
            "which target other does not have; not shared with it there"
        )
        == 1
    )

    log.clear()
    assert not gs.sync_region("Trento").failed
    assert log.lines == ["INFO:Trento: Region is synchronized."], "\n".join(log.lines)
    log.clear()
    assert not gs.sync_region("other:Madrid").failed
    assert [line for line in log.lines if not line.startswith("WARNING")] == [
        "INFO:other:Madrid: Region is synchronized."
    ]

    glance(MASTER).image_members.delete(made["id"], p_only)
    log.clear()
    assert not gs.sync_region("Trento", dry_run=True).failed, log.lines
    assert (
        f"INFO:Trento: Image pending to update the members {made['name']}: remove {p_only}"
        in log.lines
    )
    copy = region_images(glance("Trento"))[made["name"]]
    assert set(members_of(glance("Trento"), copy["id"])) == {p_both, p_only}
    log.clear()
    assert not gs.sync_region("Trento").failed, log.lines
    assert (
        f"INFO:Trento: Updating the members of image {made['name']}: remove {p_only}" in log.lines
    )
    copy = region_images(glance("Trento"))[made["name"]]
    assert members_of(glance("Trento"), copy["id"]) == {p_both: "pending"}


def test_status_message_names_the_member_changes(engine, glance, make_project):
    project = make_project("keystone-1", unique("proj"))
    made = add_shared(glance, unique("shared"), [])
    gs, log = engine(master=f"forcesyncs = {made['id']}\n")
    assert not gs.sync_region("Lannion").failed, log.lines
    glance(MASTER).image_members.create(made["id"], project)
    entry = entry_of(gs, "Lannion", made["name"])
    assert entry["status"] == "pending_metadata"
    assert entry["message"].endswith(f"; members: add {project}")
    assert not gs.sync_region("Lannion").failed, log.lines
    assert entry_of(gs, "Lannion", made["name"])["status"] == "ok"


def test_accept_members_copies_the_master_status(engine, glance, make_project):
    accepted, pending = (
        make_project("keystone-1", unique("proj")),
        make_project("keystone-1", unique("proj")),
    )
    made = add_shared(glance, unique("shared"), [accepted, pending])
    glance(MASTER).image_members.update(made["id"], accepted, "accepted")
    gs, log = engine(master=f"forcesyncs = {made['id']}\naccept_members = true\n")
    assert not gs.sync_region("Trento").failed, log.lines
    copy = region_images(glance("Trento"))[made["name"]]
    assert members_of(glance("Trento"), copy["id"]) == {accepted: "accepted", pending: "pending"}
    assert not [line for line in log.lines if line.startswith("WARNING")]


def test_a_private_copy_becomes_shared_with_the_members(engine, glance, make_project, add_image):
    project = make_project("keystone-1", unique("proj"))
    made = add_image(unique("later"), public=False)
    gs, log = engine(master=f"forcesyncs = {made.id}\n")
    assert not gs.sync_region("Trento").failed, log.lines
    assert region_images(glance("Trento"))[made.name]["visibility"] == "private"
    glance(MASTER).images.update(made.id, visibility="shared")
    glance(MASTER).image_members.create(made.id, project)
    log.clear()
    assert not gs.sync_region("Trento").failed, log.lines
    copy = region_images(glance("Trento"))[made.name]
    assert copy["visibility"] == "shared"
    assert members_of(glance("Trento"), copy["id"]) == {project: "pending"}


def test_accept_members_without_admin_warns_once(engine, glance, tb_info, os_session):
    """The demo user (member of project demo) owns its images but may not set member
    statuses: one warning for the region, the members added pending all the same."""
    from glanceclient import Client

    demo = tb_info["keystones"]["keystone-1"]["demo"]
    admin = tb_info["keystones"]["keystone-1"]["admin"]
    client = Client("2", session=os_session("keystone-1", "demo"), region_name=MASTER)
    names, projects, ids = [unique("shared"), unique("shared")], [admin["project_id"]], []
    for name in names:
        record = client.images.create(
            name=name, visibility="shared", disk_format="raw", container_format="bare"
        )
        client.images.upload(record["id"], io.BytesIO(os.urandom(512)), image_size=512)
        client.image_members.create(record["id"], projects[0])
        ids.append(record["id"])
    glance(MASTER).image_members.update(record["id"], projects[0], "accepted")
    cred = {"user": demo["username"], "password": demo["password"], "tenant": "demo"}
    gs, log = engine(
        master=f"forcesyncs = {', '.join(ids)}\naccept_members = true\n",
        cred=cred,
    )
    assert not gs.sync_region("Trento").failed, log.lines
    warnings = [line for line in log.lines if line.startswith("WARNING")]
    assert warnings == [
        "WARNING:Trento: accept_members is set, but the credentials of target master may not "
        "set member statuses (they are not admin); members are added pending and their "
        "statuses left as they are"
    ]
    copies = region_images(glance("Trento"))
    for name in names:
        assert members_of(glance("Trento"), copies[name]["id"]) == {projects[0]: "pending"}
