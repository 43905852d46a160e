"""Syncs on Celery workers against the real testbed (issue 15 item 5).

A ``manage.py gunicornserver`` service on PostgreSQL publishes; ``manage.py worker``
processes sync the testbed's Glance servers. The brokers are the machine's RabbitMQ (a
vhost of this run) and Redis (a database number of these tests). A sync is held
mid-upload by freezing the target Glance (SIGSTOP), as in test_service_leases.py;
intervals are short through the Flask config file (HEARTBEAT_INTERVAL 0.5 s, DEAD_AFTER
5 s).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

import pytest
from fixtures_glance import config_text, region_images, unique
from service_process import ServiceProcess

from glancesync.backends.glance import UPLOAD_MARKER
from tests.support.brokers import (
    WorkerProcess,
    cut_connections,
    publish_again,
    rabbit_vhost,
    redis_database,
)
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.concurrency,
    pytest.mark.usefixtures("clean_glance"),
]

MB = 1024 * 1024
FAST = {"HEARTBEAT_INTERVAL": 0.5, "DEAD_AFTER": 5.0}
INTERRUPTED = "Sync interrupted: the server process running it stopped"
STOPPED = "Sync interrupted: the service stopped"


class Deployment:
    """One service and its workers on one broker, all stopped at the end."""

    def __init__(self, svc: ServiceProcess, broker: str) -> None:
        self.svc = svc
        self.broker = broker
        self.workers: list[WorkerProcess] = []
        self.environ = {**svc.environ, "GLANCESYNCAPP_BROKER_URL": broker}
        svc.environ["GLANCESYNCAPP_BROKER_URL"] = broker

    def worker(self, *args: str) -> WorkerProcess:
        self.workers.append(WorkerProcess(self.environ, self.svc.folder / "workers", *args))
        wait_until(self.workers[-1].ready, 60)
        return self.workers[-1]

    def post(self, region: str, token: str) -> str:
        answer = self.svc.post(f"/v1/regions/{region}/tasks", token)
        assert answer.status_code in (201, 202), answer.text
        return answer.headers["Location"]

    def holder(self, location: str) -> int | None:
        """The pid of the process holding the task's lease."""
        worker = self.svc.get_task_row(location)["worker"]
        return int(worker.split(":")[1]) if worker else None

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


@pytest.fixture
def deployment(tb_info, images_dir, tmp_path) -> Iterator:
    """``deployment(broker, routes="", other=False)``: the service running, no worker yet."""
    stack = contextlib.ExitStack()

    def make(broker: str, routes: str = "", other: bool = False) -> Deployment:
        svc = ServiceProcess(tb_info, tmp_path / "svc", images_dir, workers=1, flask=FAST)
        if routes:
            with open(svc.folder / "fiware-glancesync.cfg", "a") as stream:
                stream.write(f"\n[celery]\nROUTES = {routes}\n")
        if other:
            (svc.folder / "glancesync.conf").write_text(config_text(tb_info, images_dir, other=""))
        found = Deployment(svc, broker)
        stack.enter_context(svc.running())
        stack.callback(found.stop)
        return found

    with stack:
        yield make


@pytest.fixture
def rabbit() -> Iterator[str]:
    with rabbit_vhost() as url:
        yield url


def appears(glance, region: str, name: str) -> None:
    wait_until(lambda: name in region_images(glance(region)), 30)


def one_verified_copy(glance, region: str, name: str, md5: str) -> None:
    images = [dict(i) for i in glance(region).images.list() if i["name"] == name]
    assert len(images) == 1, images
    assert images[0]["status"] == "active" and images[0]["checksum"] == md5
    assert UPLOAD_MARKER not in images[0]


def test_two_workers_share_the_syncs_of_three_regions(
    rabbit, deployment, admin_token, add_image, glance, frozen
):
    name = unique("share")
    master = add_image(name, size=8 * MB)
    token = admin_token()
    dep = deployment(rabbit, other=True)
    first, second = dep.worker("-c", "1"), dep.worker("-c", "1")
    with frozen("glance-Trento", "glance-Lannion"):
        held = [dep.post("Trento", token), dep.post("Lannion", token)]
        wait_until(lambda: all(dep.svc.get_task_row(h)["status"] == "syncing" for h in held), 30)
        assert {dep.holder(h) for h in held} == {first.pid, second.pid}
        madrid = dep.post("other:Madrid", token)
        # time that must pass (the scenario): the workers' heartbeats keep their leases
        time.sleep(FAST["DEAD_AFTER"] + 1)
        assert dep.svc.get_task_row(madrid)["status"] == "queued"  # both workers are full
        assert all(dep.svc.get_task_row(h)["status"] == "syncing" for h in held)
    for location in [*held, madrid]:
        assert dep.svc.wait_task(location, token, 90)["status"] == "synced"
    assert dep.holder(madrid) in (first.pid, second.pid)
    for region in ("Trento", "Lannion", "Madrid"):
        one_verified_copy(glance, region, name, master.md5)


def test_a_worker_killed_mid_sync_leaves_no_stuck_task(
    rabbit, deployment, admin_token, add_image, glance, frozen
):
    name = unique("kill9")
    master = add_image(name, size=16 * MB)
    token = admin_token()
    dep = deployment(rabbit)
    doomed = dep.worker()
    location = dep.post("Trento", token)
    appears(glance, "Trento", name)
    with frozen("glance-Trento"):
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.process.wait(10)
        killed = time.monotonic()
        task = dep.svc.wait_task(location, token, 5 + 5)  # DEAD_AFTER + margin
    took = time.monotonic() - killed
    assert (task["status"], task["message"]) == ("failed", INTERRUPTED)
    dep.worker()
    again = dep.post("Trento", token)
    assert dep.svc.wait_task(again, token, 60)["status"] == "synced"
    one_verified_copy(glance, "Trento", name, master.md5)  # the half image was cleaned
    print(f"worker kill -9 mid-sync: task failed after {took:.1f} s")


def test_sigterm_of_a_worker_ends_its_sync_cleanly(
    rabbit, deployment, admin_token, add_image, glance, frozen
):
    name = unique("wterm")
    add_image(name, size=16 * MB)
    token = admin_token()
    dep = deployment(rabbit)
    worker = dep.worker()
    location = dep.post("Trento", token)
    appears(glance, "Trento", name)
    with frozen("glance-Trento"):
        started = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        time.sleep(1)  # the fault: Glance stays frozen a while after the SIGTERM
    assert worker.process.wait(20) == 0
    took = time.monotonic() - started
    row = dep.svc.get_task_row(location)
    assert (row["status"], row["message"]) == ("failed", STOPPED)
    assert took < 10, f"the worker took {took:.1f} s to stop"
    assert name not in region_images(glance("Trento"))  # no half image left


def test_progress_and_cancel_through_the_api_of_a_task_on_a_worker(
    rabbit, deployment, admin_token, add_image, glance, frozen
):
    """The service answers for a sync another process runs: its holder, its cancel
    (through the database, polled by the worker) and its progress."""
    name = unique("wcancel")
    add_image(name, size=8 * MB)
    token = admin_token()
    dep = deployment(rabbit)
    worker = dep.worker()
    with frozen("glance-Trento"):  # the sync waits on the region's first request
        location = dep.post("Trento", token)
        wait_until(lambda: dep.svc.get(location, token).json()["status"] == "syncing", 30)
        assert dep.holder(location) == worker.pid
        answer = dep.svc.http.post(
            dep.svc.url + location + "/cancel", headers={"X-Auth-Token": token}, timeout=20
        )
        assert answer.status_code == 202, answer.text
        assert dep.svc.get(location, token).json()["cancelRequested"] is True
    task = dep.svc.wait_task(location, token, 30)
    assert (task["status"], task["message"]) == ("failed", "cancelled")
    assert name not in region_images(glance("Trento"))
    again = dep.post("Trento", token)
    task = dep.svc.wait_task(again, token, 60)
    assert task["status"] == "synced" and dep.holder(again) == worker.pid
    assert task["progress"]["bytesDone"] == task["progress"]["bytesTotal"] == 8 * MB


def test_a_broker_cut_mid_sync_and_a_duplicate_message_start_no_second_sync(
    rabbit, deployment, admin_token, add_image, glance, frozen
):
    name = unique("cut")
    master = add_image(name, size=16 * MB)
    token = admin_token()
    dep = deployment(rabbit)
    worker = dep.worker()
    location = dep.post("Trento", token)
    appears(glance, "Trento", name)
    task_id = location.rsplit("/", 1)[1]
    with frozen("glance-Trento"):
        cut_connections(rabbit)
        wait_until(lambda: "Connection to broker lost" in worker.text(), 15)
        publish_again(rabbit, task_id, "Trento", "glancesync")
        wait_until(lambda: f"Message of task {task_id} dropped" in worker.text(), 60)
    assert dep.svc.wait_task(location, token, 60)["status"] == "synced"
    one_verified_copy(glance, "Trento", name, master.md5)
    assert dep.holder(location) == worker.pid
    after = dep.post("Lannion", token)  # the worker consumes again after the cut
    assert dep.svc.wait_task(after, token, 60)["status"] == "synced"
    assert dep.holder(after) == worker.pid


def test_a_routed_region_runs_only_on_its_queues_worker(
    rabbit, deployment, admin_token, add_image, glance
):
    add_image(unique("route"), size=MB)
    token = admin_token()
    dep = deployment(rabbit, routes="Trento=east")
    default, east = dep.worker(), dep.worker("-Q", "east")
    for _ in range(2):
        trento, lannion = dep.post("Trento", token), dep.post("Lannion", token)
        for location in (trento, lannion):
            assert dep.svc.wait_task(location, token, 60)["status"] == "synced"
        assert (dep.holder(trento), dep.holder(lannion)) == (east.pid, default.pid)


def test_redis_smoke_and_a_redelivered_message(deployment, admin_token, add_image, glance):
    name = unique("redis")
    master = add_image(name, size=MB)
    token = admin_token()
    with redis_database() as url:
        dep = deployment(url)
        worker = dep.worker()
        location = dep.post("Trento", token)
        first = dep.svc.wait_task(location, token, 60)
        assert first["status"] == "synced" and dep.holder(location) == worker.pid
        publish_again(url, first["taskId"], "Trento", "glancesync")
        wait_until(lambda: f"Message of task {first['taskId']} dropped" in worker.text(), 30)
        assert dep.svc.get(location, token).json() == first
        one_verified_copy(glance, "Trento", name, master.md5)
        dep.stop()


def test_a_group_runs_on_one_worker_per_queue_and_fans_out_there(
    rabbit, deployment, admin_token, add_image, glance, frozen
):
    """``POST /v1/tasks`` for Trento and Lannion (queue east) and Madrid (default): the
    east worker claims both east regions at once, though it runs one sync (-c 1), because
    they are one fan-out group; Madrid runs on the default queue's worker."""
    name = unique("group")
    master = add_image(name, size=8 * MB)
    token = admin_token()
    dep = deployment(rabbit, routes="Trento=east, Lannion=east", other=True)
    default, east = dep.worker("-c", "1"), dep.worker("-Q", "east", "-c", "1")
    regions = ["Trento", "Lannion", "other:Madrid"]
    with frozen("glance-Trento"):
        answer = dep.svc.http.post(
            dep.svc.url + "/v1/tasks",
            json={"regions": regions},
            headers={"X-Auth-Token": token},
            timeout=20,
        )
        assert answer.status_code == 202, answer.text
        locations = [
            f"/v1/regions/{task['region']}/tasks/{task['taskId']}"
            for task in answer.json()["tasks"]
        ]
        trento, lannion, madrid = locations
        east_pair = (trento, lannion)
        wait_until(
            lambda: all(dep.svc.get_task_row(t)["status"] == "syncing" for t in east_pair), 30
        )
        assert {dep.holder(t) for t in east_pair} == {east.pid}
    for location in locations:
        wait_until(lambda loc=location: dep.svc.get_task_row(loc)["status"] == "synced", 90)
    assert dep.holder(madrid) == default.pid
    for region in ("Trento", "Lannion", "Madrid"):
        one_verified_copy(glance, region, name, master.md5)
