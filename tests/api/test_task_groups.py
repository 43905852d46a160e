"""``POST /v1/tasks``: several regions synced as one fan-out group (issue 14, item 2).

The contract of app/openapi.json: validated all or nothing (400, 410 naming the entry),
duplicates once, ``"all"`` and ``target:`` expanded as the command line does, a region
already syncing contributes its task, 202 when a task is new, else 200, tasks in request
order. The syncs use the CSV mock (tests/support/service_files.py): Burgos lacks img02, Madrid
lacks img02 and img03, Caceres's listing fails.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from app.regions import core
from app.tasks import TaskRunner
from tests.api.fakes import ADMIN
from tests.support.service_app import wait_for_task

# Run on SQLite, PostgreSQL and MariaDB (tests/api/conftest.py).
pytestmark = [pytest.mark.all_databases, pytest.mark.concurrency]

AUTH = {"X-Auth-Token": ADMIN}


def post(client, body: Any, **kwargs):
    return client.post("/v1/tasks", json=body, headers=AUTH, **kwargs)


def location(task: dict) -> str:
    return f"/v1/regions/{task['region']}/tasks/{task['taskId']}"


@pytest.fixture
def hold_syncs(monkeypatch: pytest.MonkeyPatch) -> list:
    """Nothing runs: tasks stay syncing; the launched groups are recorded."""
    groups: list = []
    monkeypatch.setattr(TaskRunner, "launch", lambda self, task_id, region: None)
    monkeypatch.setattr(
        TaskRunner, "submit", lambda self, job, runner, members: groups.append(members)
    )
    return groups


class CountingMaster:
    """The mock master backend, counting the reads of each image's data."""

    def __init__(self, inner: Any):
        self.inner, self.reads, self.lock = inner, Counter(), threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def image_source(self, region, image):
        with self.lock:
            self.reads[image.name] += 1
        return self.inner.image_source(region, image)


@pytest.fixture
def counted(app) -> CountingMaster:
    with app.app_context():
        gs = core().glancesync()
        gs.backends["master"] = CountingMaster(gs.backends["master"])
        return gs.backends["master"]


def test_one_post_syncs_the_regions_as_one_group_reading_the_master_once(client, counted):
    response = post(client, {"regions": ["other:Madrid", "Burgos"]})
    assert response.status_code == 202
    tasks = response.get_json()["tasks"]
    assert [t["region"] for t in tasks] == ["other:Madrid", "Burgos"]
    assert all(t["status"] == "syncing" for t in tasks)
    ends = [wait_for_task(client, location(t), AUTH) for t in tasks]
    assert [end["status"] for end in ends] == ["synced", "synced"]
    assert ends[0]["taskId"] == tasks[0]["taskId"]
    uploaded = {
        end["region"]: {i["name"] for i in end["images"] if i["result"] == "done"} for end in ends
    }
    assert "img02" in uploaded["other:Madrid"] and "img02" in uploaded["Burgos"]
    assert counted.reads["img02"] == 1  # shared by both regions: one read of the master
    assert ends[1]["progress"]["bytesDone"] >= 20971520  # each task its own progress


def test_separate_posts_read_the_master_once_per_region(client, counted):
    tasks = [
        client.post(f"/v1/regions/{region}/tasks", headers=AUTH).get_json()
        for region in ("other:Madrid", "Burgos")
    ]
    assert [wait_for_task(client, location(t), AUTH)["status"] for t in tasks] == ["synced"] * 2
    assert counted.reads["img02"] == 2


def test_duplicates_count_once_at_their_first_place(client, hold_syncs):
    response = post(client, {"regions": ["Burgos", "other:Madrid", "master:Burgos", "Burgos"]})
    assert response.status_code == 202
    assert [t["region"] for t in response.get_json()["tasks"]] == ["Burgos", "other:Madrid"]
    assert [[region for _, region in group] for group in hold_syncs] == [["Burgos", "other:Madrid"]]


def test_all_is_the_master_targets_regions(client, hold_syncs):
    response = post(client, {"regions": "all"})
    assert response.status_code == 202
    assert [t["region"] for t in response.get_json()["tasks"]] == ["Burgos", "Caceres"]


def test_a_target_entry_expands_as_on_the_command_line(client, hold_syncs):
    response = post(client, {"regions": ["other:", "Burgos"]})
    assert [t["region"] for t in response.get_json()["tasks"]] == ["other:Madrid", "Burgos"]
    response = post(client, {"regions": [":"]})
    assert [t["region"] for t in response.get_json()["tasks"]] == ["Burgos", "Caceres"]


def test_a_region_already_syncing_contributes_its_task(client, hold_syncs):
    burgos = client.post("/v1/regions/Burgos/tasks", headers=AUTH).get_json()
    response = post(client, {"regions": ["Burgos", "other:Madrid"]})
    assert response.status_code == 202
    tasks = response.get_json()["tasks"]
    assert tasks[0]["taskId"] == burgos["taskId"]
    assert [[region for _, region in group] for group in hold_syncs] == [["other:Madrid"]]
    again = post(client, {"regions": ["other:Madrid", "Burgos"]})
    assert again.status_code == 200
    assert [t["taskId"] for t in again.get_json()["tasks"]] == [
        tasks[1]["taskId"],
        burgos["taskId"],
    ]
    assert len(hold_syncs) == 1  # nothing new, no group launched


@pytest.mark.parametrize(
    "entry, named",
    [
        ("Atlantis", "Atlantis"),
        ("other:Atlantis", "other:Atlantis"),
        ("nowhere:Madrid", "nowhere:Madrid"),
        ("nowhere:", "nowhere:"),
        ("master:Atlantis", "Atlantis"),
    ],
)
def test_an_unknown_region_is_410_naming_it_and_nothing_is_created(
    client, hold_syncs, entry, named
):
    response = post(client, {"regions": ["Burgos", entry]})
    assert response.status_code == 410
    assert named in response.get_json()["error"]["description"]
    assert client.get("/v1/regions/Burgos/tasks", headers=AUTH).get_json() == {"tasks": []}
    assert hold_syncs == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"regions": []},
        {"regions": [1]},
        {"regions": [""]},
        {"regions": "some"},
        ["Burgos"],
        {"regions": None},
        {"regions": {"Burgos": 1}},
    ],
)
def test_a_malformed_body_is_400(client, hold_syncs, body):
    response = post(client, body)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == 400
    assert hold_syncs == []


def test_a_body_that_is_not_json_is_400(client, hold_syncs):
    response = client.post(
        "/v1/tasks", data="regions=Burgos", headers=AUTH, content_type="text/plain"
    )
    assert response.status_code == 400


def test_a_group_needs_a_token(client):
    assert client.post("/v1/tasks", json={"regions": ["Burgos"]}).status_code == 401


def test_each_task_of_a_group_keeps_its_own_result(client):
    response = post(client, {"regions": ["Caceres", "Burgos"]})
    caceres, burgos = (
        wait_for_task(client, location(t), AUTH) for t in response.get_json()["tasks"]
    )
    assert caceres["status"] == "failed" and "Caceres" in caceres["message"]
    assert burgos["status"] == "synced"
