"""Progress of a running task and its cancel (issue 7, item 4), across server processes.

The syncs use the CSV mock store behind ``GatedUploads``, a backend wrapper whose uploads
report progress in several chunks and stop after the first one until the test opens the
gate, so the test can look at a task mid-upload and cancel it deterministically. Two apps
on one database stand for two gunicorn workers: the GET and the cancel go through the
one that does not run the sync, so they must go through the database.
"""

from __future__ import annotations

import threading

import pytest
from flask import Flask

from app.regions import core
from app.tasks import TaskRunner
from tests.api.fakes import ADMIN, MEMBER
from tests.support.gated_uploads import CHUNKS, GatedUploads, burgos_images
from tests.support.service_app import wait_for_task
from tests.support.waiting import wait_until

# Run on SQLite, PostgreSQL and MariaDB (tests/api/conftest.py).
pytestmark = [pytest.mark.all_databases, pytest.mark.concurrency]

AUTH = {"X-Auth-Token": ADMIN}
IMG02 = 20971520  # the one image Burgos lacks (tests/support/service_files.py)


@pytest.fixture
def gates() -> tuple[threading.Event, threading.Event]:
    return threading.Event(), threading.Event()


@pytest.fixture
def apps(app_factory, gates) -> tuple[Flask, Flask]:
    """The worker that runs the syncs (gated uploads), and another one."""
    running = app_factory(PROGRESS_INTERVAL=0.05)
    with running.app_context():
        gs = core().glancesync()
        gs.backends = {name: GatedUploads(backend, *gates) for name, backend in gs.backends.items()}
    yield running, app_factory(PROGRESS_INTERVAL=0.05)
    gates[1].set()  # never leave a sync thread waiting


def start(app: Flask, started: threading.Event, region: str = "Burgos") -> str:
    response = app.test_client().post(f"/v1/regions/{region}/tasks", headers=AUTH)
    assert response.status_code == 202
    assert started.wait(60), "the upload did not start"
    return response.headers["Location"]


def test_a_syncing_task_shows_its_progress_through_another_worker(apps, gates):
    running, other = apps
    location = start(running, gates[0])
    client = other.test_client()

    def progress() -> dict | None:
        body = client.get(location, headers=AUTH).get_json()
        return body if body["progress"]["images"] else None

    body = wait_until(progress, 5.0, what="progress stored")
    assert body["status"] == "syncing" and body["cancelRequested"] is False
    assert body["progress"]["bytesTotal"] == IMG02
    assert body["progress"]["bytesDone"] == IMG02 // CHUNKS
    (image,) = body["progress"]["images"]
    assert image["name"] == "img02" and image["region"] == "Burgos"
    assert image["state"] == "uploading" and image["bytesTotal"] == IMG02
    assert image["rate"] >= 0
    listed = client.get("/v1/regions/Burgos/tasks", headers=AUTH).get_json()["tasks"][0]
    assert "progress" not in listed and "cancelRequested" not in listed

    gates[1].set()
    final = wait_for_task(client, location, AUTH)
    assert final["status"] == "synced"
    # the final progress is kept: every byte, the upload done
    assert final["progress"]["bytesDone"] == IMG02
    assert [i["state"] for i in final["progress"]["images"]] == ["done"]


def test_cancel_through_another_worker_stops_mid_upload(apps, gates):
    running, other = apps
    location = start(running, gates[0])
    task_id = location.rsplit("/", 1)[1]
    client = other.test_client()

    response = client.post(f"{location}/cancel", headers=AUTH)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "syncing" and body["cancelRequested"] is True

    # the other worker only wrote the database: the running one sees it on its next poll
    runner: TaskRunner = running.extensions["glancesync.tasks"]
    live = runner.live(task_id)
    assert live is not None
    wait_until(live.cancel.is_set, 5.0, what="the cancel to reach the running worker")
    gates[1].set()  # the next chunk raises Cancelled

    final = wait_for_task(client, location, AUTH)
    assert final["status"] == "failed" and final["message"] == "cancelled"
    img02 = next(i for i in final["images"] if i["name"] == "img02")
    assert img02["result"] == "failed" and img02["error"] == "cancelled"
    (progress,) = final["progress"]["images"]
    assert progress["state"] == "failed" and progress["bytesDone"] < IMG02
    assert "img02" not in burgos_images(running)  # nothing half-uploaded was kept

    again = client.post(f"{location}/cancel", headers=AUTH)
    assert again.status_code == 409
    assert again.get_json()["error"] == {
        "message": "Task is not syncing. Unable to cancel it.",
        "code": 409,
    }


def test_cancel_in_the_running_worker_needs_no_poll(apps, gates):
    running, _ = apps
    location = start(running, gates[0])
    task_id = location.rsplit("/", 1)[1]
    assert running.test_client().post(f"{location}/cancel", headers=AUTH).status_code == 202
    live = running.extensions["glancesync.tasks"].live(task_id)
    assert live is not None and live.cancel.is_set()
    gates[1].set()
    final = wait_for_task(running.test_client(), location, AUTH)
    assert (final["status"], final["message"]) == ("failed", "cancelled")


def test_a_new_sync_after_a_cancel_uploads_the_image(apps, gates):
    running, _ = apps
    location = start(running, gates[0])
    client = running.test_client()
    client.post(f"{location}/cancel", headers=AUTH)
    gates[1].set()
    assert wait_for_task(client, location, AUTH)["message"] == "cancelled"
    again = client.post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert wait_for_task(client, again.headers["Location"], AUTH)["status"] == "synced"
    assert "img02" in burgos_images(running)


def test_cancel_errors(client):
    done = client.post("/v1/regions/Caceres/tasks", headers=AUTH)  # fails at once (list fault)
    location = done.headers["Location"]
    assert wait_for_task(client, location, AUTH)["status"] == "failed"
    task_id = location.rsplit("/", 1)[1]
    assert client.post(f"{location}/cancel", headers=AUTH).status_code == 409
    assert client.post(f"{location}/cancel").status_code == 401
    assert client.post(f"{location}/cancel", headers={"X-Auth-Token": MEMBER}).status_code == 403
    assert (
        client.post(f"/v1/regions/Nowhere/tasks/{task_id}/cancel", headers=AUTH).status_code == 410
    )
    assert (
        client.post(f"/v1/regions/Burgos/tasks/{task_id}/cancel", headers=AUTH).status_code == 404
    )
    unknown = "/v1/regions/Caceres/tasks/00000000-0000-0000-0000-000000000000/cancel"
    assert client.post(unknown, headers=AUTH).status_code == 404
    assert client.get(f"{location}/cancel", headers=AUTH).status_code == 405


def test_a_finished_task_without_uploads_has_an_empty_progress(client):
    location = client.post("/v1/regions/Caceres/tasks", headers=AUTH).headers["Location"]
    final = wait_for_task(client, location, AUTH)
    assert final["progress"] == {"images": [], "bytesDone": 0, "bytesTotal": 0}
    assert final["cancelRequested"] is False
