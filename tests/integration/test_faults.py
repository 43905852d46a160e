"""Faults made by stopping or killing the real processes of the testbed (issue 6).

* a target Glance killed in the middle of an upload;
* Keystone down when a request reaches the service;
* the service killed with ``kill -9`` during a sync;
* PostgreSQL restarted under the running service.

Each test leaves every server running again (``restart_after`` / ``finally``).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtures_glance import region_images, unique
from service_process import ServiceProcess

from glancesync.backends.glance import UPLOAD_MARKER
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_glance")]

MB = 1024 * 1024
INTERRUPTED = "Sync interrupted: the server process running it stopped"


# --------------------------------------------------------------------------- helpers


def kill_after(bytes_sent: int, action: Callable[[], None]) -> Callable:
    """A progress factory whose callback runs ``action`` once that many bytes are sent."""
    done = threading.Event()

    def factory(region: str, name: str, size: int):
        sent = [0]

        def callback(count: int) -> None:
            sent[0] += count
            if sent[0] >= bytes_sent and not done.is_set():
                done.set()
                action()

        return callback

    return factory


def marked(images: dict[str, dict]) -> list[dict]:
    return [image for image in images.values() if UPLOAD_MARKER in image]


# --------------------------------------------------------------------------- (a) Glance


def test_target_glance_killed_during_upload(testbed, engine, add_image, glance, restart_after):
    name = unique("big")
    master = add_image(name, size=8 * MB)
    gs, log = engine()
    restart_after.append("glance-Trento")
    kill = kill_after(2 * MB, lambda: testbed.kill_server("glance-Trento"))
    result = gs.sync_region("Trento", progress=kill)
    assert result.failed
    assert result.error.startswith(f"Trento: Upload of {name} Failed. Cause: "), result.error
    assert f"ERROR:{result.error}" in log.lines

    testbed.start_server("glance-Trento")
    left = [dict(image) for image in glance("Trento").images.list()]
    assert left, "the killed upload left no image: nothing to clean up was tested"
    assert [image["status"] for image in left if image["status"] == "active"] == []
    assert all(image.get(UPLOAD_MARKER) == gs.runs.run_id for image in left), left

    log.clear()
    again = gs.sync_region("Trento")
    assert not again.failed, log.lines
    for image in left:
        message = f"INFO:Trento: Deleting leftover image {image['id']} of an interrupted upload"
        assert message in log.lines
    images = region_images(glance("Trento"))
    assert images[name]["status"] == "active" and images[name]["checksum"] == master.md5
    assert marked(images) == [] and len(list(glance("Trento").images.list())) == 1


# --------------------------------------------------------------------------- the service


@pytest.fixture
def service(testbed, tb_info, images_dir, tmp_path: Path):
    """The REST service under gunicorn (2 workers) on PostgreSQL, stopped at the end."""
    with ServiceProcess(tb_info, tmp_path / "service", images_dir).running() as process:
        yield process


def test_keystone_down_gives_503_json(testbed, service, admin_token, restart_after):
    fresh = admin_token()
    pids = service.worker_pids()
    restart_after.append("keystone-1")
    testbed.kill_server("keystone-1")
    try:
        response = service.get("/v1/regions/Trento/tasks", fresh)
        assert response.status_code == 503, response.text
        assert response.headers["Content-Type"] == "application/json"
        error = response.json()["error"]
        assert error["message"] == "Service unavailable" and "Keystone" in error["description"]
        assert service.get("/").status_code == 200  # the public route still answers
    finally:
        testbed.start_server("keystone-1")
    assert service.worker_pids() == pids  # no worker crashed or was replaced
    after = service.get("/v1/regions/Trento/tasks", fresh)
    assert after.status_code == 200, after.text


def test_service_killed_during_sync(testbed, service, admin_token, add_image, glance):
    name = unique("kill9")
    master = add_image(name, size=24 * MB)
    token = admin_token()
    created = service.post("/v1/regions/Trento/tasks", token)
    assert created.status_code == 202
    location = created.headers["Location"]
    wait_until(lambda: any(i["name"] == name for i in glance("Trento").images.list()), 20)
    service.kill9()
    assert service.get_task_row(location)["status"] == "syncing"  # left behind by the kill

    service.start()
    task = service.get(location, token).json()
    assert (task["status"], task["message"]) == ("failed", INTERRUPTED)
    again = service.post("/v1/regions/Trento/tasks", token)
    assert again.status_code == 202
    final = service.wait_task(again.headers["Location"], token, timeout=30)
    assert final["status"] == "synced", final
    images = region_images(glance("Trento"))
    assert images[name]["status"] == "active" and images[name]["checksum"] == master.md5
    assert marked(images) == [] and len(list(glance("Trento").images.list())) == 1
    service.assert_no_secret_logged([token])


def restart_postgresql() -> None:
    version = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True).stdout
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version.strip(), "main", "restart"]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def test_postgresql_restart_under_the_service(service, admin_token):
    token = admin_token()
    path = "/v1/regions/Trento/tasks"
    assert service.get(path, token).status_code == 200
    stop = threading.Event()
    answers: list[tuple[int, str]] = []

    def poll() -> None:
        while not stop.is_set():
            response = service.get(path, token)
            answers.append((response.status_code, response.headers.get("Content-Type", "")))
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        restart_postgresql()
        wait_until(lambda: service.get(path, token).status_code == 200, 20)
    finally:
        stop.set()
        poller.join()
    failed = [answer for answer in answers if answer[0] != 200]
    assert all(answer == (503, "application/json") for answer in failed), failed
    print(f"PostgreSQL restart: {len(failed)} of {len(answers)} requests got 503")
    for _ in range(10):  # every worker's pool recovered: no stale connection is used
        assert service.get(path, token).status_code == 200
    assert service.post(path, token).status_code == 202
