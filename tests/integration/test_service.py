"""The REST service under gunicorn (2 workers) against the testbed (reference 10, 11).

The service runs as an operator runs it: ``manage.py db upgrade`` then ``manage.py
gunicornserver -H -p -w`` in a subprocess, configured only through the files and
environment variables of 11.2; the tests talk to it over HTTP with real Keystone tokens.
Master Spain2 on keystone-1; target ``other`` is keystone-2 (region Madrid).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixtures_glance import MASTER, region_images, wipe_all

from demo import service
from demo.service import Api, ServiceFiles

pytestmark = pytest.mark.integration

WORKERS = 2


@dataclass
class Running:
    """The service of this module: its files, URL and an admin API client."""

    files: ServiceFiles
    url: str
    api: Api
    master_pid: int


@dataclass(frozen=True)
class Seed:
    name: str
    md5: str
    public: bool


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def seeds(tb_info, glance) -> Iterator[list[Seed]]:
    """Empty regions, then 3 small public images (with properties) and 1 private in Spain2."""
    wipe_all(tb_info, glance)
    client = glance(MASTER)
    tag = uuid.uuid4().hex[:6]
    made = []
    sizes = [(1024, True), (3000, True), (5000, True), (700, False)]
    for index, (size, public) in enumerate(sizes):
        data = os.urandom(size)
        record = client.images.create(
            name=f"svc-{tag}-{index}",
            visibility="public" if public else "private",
            disk_format="raw",
            container_format="bare",
            type="base",
            nid=str(index),
        )
        client.images.upload(record["id"], io.BytesIO(data), image_size=size)
        made.append(Seed(record["name"], hashlib.md5(data).hexdigest(), public))
    yield made
    wipe_all(tb_info, glance)


@pytest.fixture(scope="module")
def running(tb_info, seeds, tmp_path_factory) -> Iterator[Running]:
    """db upgrade, then gunicorn with 2 workers; SIGTERM through the pid file at the end."""
    files = ServiceFiles(tmp_path_factory.mktemp("service"))
    port = service.free_port()
    service.write_files(files, tb_info, port, workers=WORKERS, keystone_requests=True)
    service.db_upgrade(files)
    assert files.database.is_file()
    proc = service.start(files, port, workers=WORKERS)
    url = f"http://127.0.0.1:{port}"
    token = service.get_token(tb_info["keystones"]["keystone-1"])
    try:
        pid = service.read_pid(files)
        assert pid == proc.pid
        yield Running(files, url, Api(url, token), pid)
    finally:
        service.stop(files)
        proc.wait(timeout=30)
    assert not files.pidfile.exists()  # gunicorn removes it on a clean stop
    assert "Traceback" not in files.api_log.read_text()


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def synchronised(seeds: list[Seed]) -> dict[str, str]:
    """name -> md5 of the images a sync must bring to every target region."""
    return {seed.name: seed.md5 for seed in seeds if seed.public}


def sync_and_wait(api: Api, region: str) -> dict[str, Any]:
    answer = api.call("POST", f"/v1/regions/{region}/tasks")
    assert answer.status_code == 202, answer.text
    location = answer.headers["Location"]
    assert location == f"/v1/regions/{region}/tasks/{answer.json()['taskId']}"
    assert answer.json()["status"] == "syncing"
    return api.wait_task(location)


def assert_region_synchronised(api: Api, glance, region: str, seeds: list[Seed]) -> None:
    """Glance itself holds the public images with the master content; the API says ok."""
    client = glance(region.removeprefix("other:"))
    images = region_images(client)
    assert {name: image["checksum"] for name, image in images.items()} == synchronised(seeds)
    assert all(image["visibility"] == "public" for image in images.values())
    report = api.call("GET", f"/v1/regions/{region}/images")
    assert report.status_code == 200, report.text
    entries = report.json()["images"]
    assert sorted(entry["name"] for entry in entries) == sorted(synchronised(seeds))
    for entry in entries:
        assert (entry["status"], entry["message"]) == ("ok", None), entry
        assert entry["id"] == images[entry["name"]]["id"]


def validations(files: ServiceFiles, token: str) -> int:
    """Keystone validations of ``token`` by the service (keystoneauth logs it hashed)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    lines = files.api_log.read_text(errors="replace").splitlines()
    return sum(
        1
        for line in lines
        if "REQ: curl" in line and "/auth/tokens" in line and f"{{SHA256}}{digest}" in line
    )


def error_of(answer, code: int, message: str) -> None:
    assert answer.status_code == code, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["error"]["code"] == code
    assert answer.json()["error"]["message"] == message


# --------------------------------------------------------------------------- tests


def test_gunicorn_runs_two_workers(running):
    assert len(worker_pids(running.master_pid)) == WORKERS
    info = running.api.call("GET", "/", token="")
    assert info.status_code == 200
    assert info.json()["runningfrom"].endswith("Z")


def test_sync_trento_through_the_api(running, glance, seeds):
    task = sync_and_wait(running.api, "Trento")
    assert task["status"] == "synced", task
    assert task["user"] == "admin"
    uploaded = {image["name"] for image in task["images"] if image["action"] == "upload"}
    assert uploaded == set(synchronised(seeds))
    assert_region_synchronised(running.api, glance, "Trento", seeds)
    listed = running.api.call("GET", "/v1/regions/Trento/tasks").json()["tasks"]
    assert listed[0]["taskId"] == task["taskId"] and "images" not in listed[0]


def test_sync_other_target_madrid(running, glance, seeds):
    task = sync_and_wait(running.api, "other:Madrid")
    assert task["status"] == "synced", task
    assert_region_synchronised(running.api, glance, "other:Madrid", seeds)


def test_authentication_errors(running, tb_info):
    path = "/v1/regions/Trento/images"
    unauthenticated = "The request you have made requires authentication."
    error_of(running.api.call("GET", path, token=""), 401, unauthenticated)
    error_of(running.api.call("GET", path, token="not-a-token"), 401, unauthenticated)
    demo = service.get_token(tb_info["keystones"]["keystone-1"], user="demo")
    forbidden = running.api.call("GET", path, token=demo)
    error_of(forbidden, 403, "Forbidden")
    assert "admin" in forbidden.json()["error"]["description"]
    # A token of the other Keystone is unknown to keystone-1.
    other = service.get_token(tb_info["keystones"]["keystone-2"])
    error_of(running.api.call("GET", path, token=other), 401, unauthenticated)


def test_routing_region_and_resource_errors(running):
    api = running.api
    error_of(api.call("GET", "/v1/regions/Nowhere/images"), 410, "Bad region")
    error_of(api.call("POST", "/v1/regions/other:Nowhere/tasks"), 410, "Bad region")
    error_of(api.call("GET", f"/v1/regions/Trento/tasks/{uuid.uuid4()}"), 404, "Item not found")
    error_of(api.call("GET", "/v1/nothing/here"), 404, "Item not found")
    error_of(api.call("GET", "/v1/nothing/here", token=""), 404, "Item not found")
    error_of(api.call("POST", "/", token=""), 405, "Bad method")
    # Routing comes before authentication, authentication before the region.
    unauthenticated = "The request you have made requires authentication."
    error_of(api.call("GET", "/v1/regions/Nowhere/images", token=""), 401, unauthenticated)


def test_syncing_task_is_unique_and_cannot_be_deleted(running, testbed, glance, seeds):
    """Lannion's Glance frozen: the task stays syncing as long as we need, deterministically."""
    api = running.api
    testbed.freeze_server("glance-Lannion")
    try:
        first = api.call("POST", "/v1/regions/Lannion/tasks")
        assert first.status_code == 202, first.text
        task_id = first.json()["taskId"]
        again = concurrent_posts(api, "/v1/regions/Lannion/tasks", count=6)
        assert {(a.status_code, a.json()["taskId"]) for a in again} == {(200, task_id)}
        assert {a.headers["Location"] for a in again} == {first.headers["Location"]}
        location = first.headers["Location"]
        assert api.call("GET", location).json()["status"] == "syncing"
        refused = api.call("DELETE", location)
        error_of(refused, 409, "Task status is syncing. Unable to delete it.")
        compat = api.call("DELETE", f"/regions/Lannion/tasks/{task_id}")
        error_of(compat, 409, "Task status is syncing. Unable to delete it.")
        error_of(api.call("GET", f"/v1/regions/Trento/tasks/{task_id}"), 404, "Item not found")
    finally:
        testbed.thaw_server("glance-Lannion")
    task = api.wait_task(location)
    assert task["status"] == "synced", task
    assert_region_synchronised(api, glance, "Lannion", seeds)
    assert api.call("DELETE", location).status_code == 204
    error_of(api.call("GET", location), 404, "Item not found")


def concurrent_posts(api: Api, path: str, count: int) -> list[Any]:
    """POST from several threads at once: gunicorn spreads them over both workers."""
    answers: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def post(index: int) -> None:
        barrier.wait()
        answers[index] = api.call("POST", path)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_token_validated_once_per_worker(running, tb_info):
    """Cached until expiry: many requests, at most one Keystone call per worker process."""
    token = service.get_token(tb_info["keystones"]["keystone-1"])
    for _ in range(12):
        answer = running.api.call("GET", "/v1/regions/Trento/tasks", token=token)
        assert answer.status_code == 200
    assert 1 <= validations(running.files, token) <= WORKERS


def test_refused_tokens_are_remembered_briefly(running, tb_info):
    """A valid token without the role costs one validation per worker at most (it is
    valid, so cached); an invalid one too, for a few seconds (the refused-token cache):
    a client retrying a bad token does not cost a Keystone call per request."""
    demo = service.get_token(tb_info["keystones"]["keystone-1"], user="demo")
    before = validations(running.files, demo)
    for _ in range(3):
        assert running.api.call("GET", "/v1/regions/Trento/tasks", token=demo).status_code == 403
    assert validations(running.files, demo) - before <= WORKERS
    bad = "gAAAAA" + uuid.uuid4().hex
    for _ in range(3):
        assert running.api.call("GET", "/v1/regions/Trento/tasks", token=bad).status_code == 401
    assert 1 <= validations(running.files, bad) <= WORKERS
