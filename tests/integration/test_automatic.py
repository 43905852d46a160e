"""Automatic syncs (issue 17): ``manage.py listen`` beside the service, and the schedule.

The master Glance (Spain2) sends its notifications to the testbed's own RabbitMQ vhost;
the listener turns them into ordinary tasks (user ``notifications``) in the service's
PostgreSQL database. Nobody calls the API to start these syncs. Regions: ``master:``
(Trento, Lannion) and ``other:`` (Madrid, a second Keystone).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fixtures_glance import MASTER, config_text, region_images, unique
from service_process import POSTGRES, REPO, ServiceProcess

from testbed import broker
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

REGIONS = {"Trento": "Trento", "Lannion": "Lannion", "other:Madrid": "Madrid"}
QUIET = 2
AUTOMATIC = f"""
[notifications]
TRANSPORT_URL = {{url}}
QUIET = {QUIET}
MAX_WAIT = 10

[schedule]
REGIONS = master: other:
{{schedule}}
"""
SYNC_TIMEOUT = 90


class AutoService(ServiceProcess):
    """The service of ServiceProcess, with both targets and the issue-17 sections."""

    def __init__(
        self, tb_info: dict[str, Any], folder: Path, schedule: str = "", workers: int = 1
    ) -> None:
        self._extra = AUTOMATIC.format(
            url=tb_info["notifications"]["transport_url"], schedule=schedule
        )
        images_dir = folder / "images"
        images_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(tb_info, folder, images_dir, workers=workers)

    def _write_files(self, tb_info, images_dir, workers, keystone_url) -> None:
        super()._write_files(tb_info, images_dir, workers, keystone_url)
        settings = Path(self.environ["GLANCESYNC_SETTINGS_FILE"])
        settings.write_text(settings.read_text() + self._extra)
        Path(self.environ["GLANCESYNC_CONFIG"]).write_text(
            config_text(tb_info, images_dir, other="")
        )

    def tasks(self) -> list[dict[str, str]]:
        """Every stored task, oldest first."""
        with psycopg.connect(f"{POSTGRES}/{self.database}") as conn:
            rows = conn.execute(
                "SELECT task_id, region, status, user_name, message FROM task ORDER BY id"
            ).fetchall()
        keys = ("taskId", "region", "status", "user", "message")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def idle(self) -> bool:
        return all(task["status"] != "syncing" for task in self.tasks())


class ListenProcess:
    """``manage.py listen`` with the service's settings, in a folder of its own."""

    def __init__(self, service: AutoService) -> None:
        self.folder = service.folder / f"listen-{time.monotonic_ns()}"
        self.folder.mkdir()
        with open(self.folder / "stdout.log", "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(REPO / "manage.py"), "listen"],
                cwd=self.folder,
                env=service.environ,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(lambda: "Listening to the master" in self.logs(), 60)
        except AssertionError:
            self.stop()
            raise AssertionError(f"the listener did not start:\n{self.logs()[-3000:]}") from None

    def logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")
            for path in (self.folder / "stdout.log", self.folder / "glancesync-api.log")
            if path.exists()
        )

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


@pytest.fixture(scope="module")
def service(tb_info, tmp_path_factory) -> Iterator[AutoService]:
    """The REST service (1 worker, no schedule) and its database."""
    svc = AutoService(tb_info, tmp_path_factory.mktemp("automatic"))
    with svc.running():
        yield svc


@pytest.fixture
def vhost(tb_info, clean_glance) -> str:
    """The testbed's vhost, purged after the wipe: no backlog of earlier uploads."""
    name = tb_info["notifications"]["vhost"]
    broker.purge(name)
    return name


@pytest.fixture
def listener(service, vhost) -> Iterator[ListenProcess]:
    wait_until(service.idle, SYNC_TIMEOUT)
    process = ListenProcess(service)
    yield process
    assert process.stop() == 0, process.logs()[-3000:]
    assert "Traceback" not in process.logs()


@pytest.fixture(scope="module")
def token(tb_info) -> str:
    from testbed.clients import session_for

    return session_for(tb_info, "keystone-1", "admin").get_token()


def new_tasks(service: AutoService, before: list[dict]) -> list[dict]:
    known = {task["taskId"] for task in before}
    return [task for task in service.tasks() if task["taskId"] not in known]


def regions_hold(glance, name: str, check) -> bool:
    for region in REGIONS.values():
        image = region_images(glance(region)).get(name)
        if image is None or image["status"] != "active" or not check(image):
            return False
    return True


# --------------------------------------------------------------------------- tests


def test_an_image_uploaded_to_the_master_reaches_every_region_by_itself(
    service, listener, glance, add_image, token
):
    before = service.tasks()
    image = add_image(unique("auto"), size=4096)
    wait_until(
        lambda: regions_hold(glance, image.name, lambda r: r["checksum"] == image.md5),
        SYNC_TIMEOUT,
        step=0.5,
    )
    wait_until(service.idle, SYNC_TIMEOUT)
    tasks = new_tasks(service, before)
    assert sorted(task["region"] for task in tasks) == sorted(REGIONS)
    assert {(task["user"], task["status"]) for task in tasks} == {("notifications", "synced")}
    for region in REGIONS:
        report = service.get(f"/v1/regions/{region}/images?image={image.name}", token).json()
        assert [entry["status"] for entry in report["images"]] == ["ok"], report
        listed = service.get(f"/v1/regions/{region}/tasks", token).json()["tasks"]
        assert [task["user"] for task in listed] == ["notifications"]


def test_a_metadata_change_in_the_master_reaches_the_regions(service, listener, glance, add_image):
    image = add_image(unique("meta"), size=2048, colour="red")
    wait_until(
        lambda: regions_hold(glance, image.name, lambda r: r.get("colour") == "red"),
        SYNC_TIMEOUT,
        step=0.5,
    )
    wait_until(service.idle, SYNC_TIMEOUT)
    glance(MASTER).images.update(image.id, colour="blue")
    wait_until(
        lambda: regions_hold(glance, image.name, lambda r: r.get("colour") == "blue"),
        SYNC_TIMEOUT,
        step=0.5,
    )


def test_ten_quick_changes_make_at_most_two_tasks_per_region_and_end_with_the_last_value(
    service, listener, glance, add_image
):
    image = add_image(unique("burst"), size=2048, step="0")
    wait_until(
        lambda: regions_hold(glance, image.name, lambda r: r.get("step") == "0"), SYNC_TIMEOUT
    )
    wait_until(service.idle, SYNC_TIMEOUT)
    before = service.tasks()
    for step in range(1, 11):
        glance(MASTER).images.update(image.id, step=str(step))
    wait_until(
        lambda: regions_hold(glance, image.name, lambda r: r.get("step") == "10"),
        SYNC_TIMEOUT,
        step=0.5,
    )
    wait_until(service.idle, SYNC_TIMEOUT)
    # time that must pass (the scenario): a late second task would show up within one
    # quiet period, and nothing marks that it will not come
    time.sleep(QUIET + 1)
    wait_until(service.idle, SYNC_TIMEOUT)
    tasks = new_tasks(service, before)
    for region in REGIONS:
        count = sum(task["region"] == region for task in tasks)
        assert 1 <= count <= 2, (region, tasks)
    assert regions_hold(glance, image.name, lambda r: r.get("step") == "10")


def test_an_event_for_another_project_syncs_nothing(service, listener, glance, add_image, tb_info):
    before = service.tasks()
    demo_project = tb_info["keystones"]["keystone-1"]["demo"]["project_id"]
    other = add_image(unique("foreign"), size=1024, owner=demo_project)
    assert other.record["owner"] == demo_project
    glance(MASTER).images.update(other.id, colour="green")
    time.sleep(QUIET + 3)  # time that must pass: no task comes, nothing marks the end
    assert new_tasks(service, before) == []
    assert "foreign" not in listener.logs()
    # The listener was listening: an image of the master project syncs.
    mine = add_image(unique("mine"), size=1024)
    wait_until(lambda: regions_hold(glance, mine.name, lambda r: True), SYNC_TIMEOUT, step=0.5)
    for region in REGIONS.values():
        assert other.name not in region_images(glance(region))


def test_with_the_listener_down_the_schedule_catches_up(
    tb_info, service, listener, vhost, glance, add_image, tmp_path
):
    assert listener.stop() == 0
    image = add_image(unique("missed"), size=2048)
    broker.purge(vhost)  # the events of that upload are lost
    scheduled = AutoService(tb_info, tmp_path / "scheduled", schedule="INTERVAL = 3", workers=2)
    with scheduled.running():
        assert len(scheduled.worker_pids()) == 2  # two schedulers, one lease
        wait_until(
            lambda: regions_hold(glance, image.name, lambda r: r["checksum"] == image.md5),
            SYNC_TIMEOUT,
            step=0.5,
        )
        wait_until(scheduled.idle, SYNC_TIMEOUT)
        tasks = scheduled.tasks()
    assert {task["region"] for task in tasks} == set(REGIONS)
    assert {task["user"] for task in tasks} == {"schedule"}
    assert {task["status"] for task in tasks} == {"synced"}
    runs = re.findall(r"Scheduled run of (\S+) starts", scheduled.logs())
    assert runs and len(runs) == len(set(runs)), runs  # each run fired by one worker only
