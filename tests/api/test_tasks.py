"""One syncing task per region (enforced by the database), the heartbeat and the
recovery of tasks whose worker died (reference 10.7)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.models import FAILED, SYNCING, Task, db, utcnow
from app.regions import Core
from app.tasks import INTERRUPTED, TaskRunner, start_service
from app.workers import process_scope
from tests.api.fakes import ADMIN, ADMIN2
from tests.support.service_app import make_app, wait_for_task
from tests.support.service_files import SERVICE_PASSWORD
from tests.support.task_rows import HOST, add_task, dead_pid, stored
from tests.support.waiting import wait_until

# Run on SQLite, PostgreSQL and MariaDB (tests/api/conftest.py).
pytestmark = [pytest.mark.all_databases, pytest.mark.concurrency]

AUTH = {"X-Auth-Token": ADMIN}


# -- the database rule ---------------------------------------------------------------------
def test_the_database_refuses_a_second_syncing_task(app):
    add_task(app, "Burgos", "elsewhere:1", 0)
    add_task(app, "Burgos", "elsewhere:1", 0, status=FAILED)
    with pytest.raises(IntegrityError):
        add_task(app, "Burgos", "elsewhere:2", 0)


def test_concurrent_posts_through_two_apps_get_one_task(app_factory, hold_syncs):
    apps = [app_factory(), app_factory()]
    barrier = threading.Barrier(10)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def post(index: int) -> None:
        client = apps[index % 2].test_client()
        token = ADMIN if index % 2 else ADMIN2
        barrier.wait()
        response = client.post("/v1/regions/Burgos/tasks", headers={"X-Auth-Token": token})
        with lock:
            answers.append((response.status_code, response.get_json()["taskId"]))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(code for code, _ in answers)
    assert codes == [200] * 9 + [202]
    assert len({task_id for _, task_id in answers}) == 1
    with apps[0].app_context():
        task = db.session.scalars(select(Task)).all()[0]
        assert task.status == SYNCING, task.message
        assert len(db.session.scalars(select(Task)).all()) == 1


# -- recovery ------------------------------------------------------------------------------
def test_post_fails_a_task_with_a_stale_heartbeat(app, hold_syncs):
    old = add_task(app, "Burgos", "otherhost:4242", age=61)
    response = app.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert response.status_code == 202
    assert response.get_json()["taskId"] != old
    task = stored(app, old)
    assert task.status == FAILED and task.message == INTERRUPTED


def test_post_keeps_a_task_of_another_live_worker(app, hold_syncs):
    live = add_task(app, "Burgos", "otherhost:4242", age=30)
    response = app.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json()["taskId"] == live
    assert stored(app, live).status == SYNCING


def test_post_fails_a_task_of_a_dead_process_of_this_host(app, hold_syncs):
    dead = add_task(app, "Burgos", f"{HOST}:{dead_pid()}:abc", age=1, scope=process_scope())
    response = app.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert response.status_code == 202
    assert stored(app, dead).status == FAILED


def test_a_task_of_a_live_process_of_this_host_is_kept(app, hold_syncs):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = add_task(app, "Burgos", f"{HOST}:{sleeper.pid}:abc", age=1, scope=process_scope())
        response = app.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
        assert response.status_code == 200 and response.get_json()["taskId"] == live
    finally:
        sleeper.kill()
        sleeper.wait()


def test_startup_recovery(app_factory):
    first = app_factory(RECOVER_ON_START=False)
    stale = add_task(first, "Burgos", "otherhost:1", age=3600)
    fresh = add_task(first, "Caceres", "otherhost:1", age=5)
    orphan = add_task(first, "other:Madrid", this_process_worker(), age=1, scope=process_scope())
    app_factory()  # starting a server recovers the dead tasks, and only those
    assert stored(first, stale).status == FAILED
    assert stored(first, stale).message == INTERRUPTED
    assert stored(first, orphan).status == FAILED
    assert stored(first, fresh).status == SYNCING


def this_process_worker() -> str:
    import os

    return f"{HOST}:{os.getpid()}:0123456789ab"


def test_startup_recovery_skips_a_missing_schema(tmp_path, server_files, core_files, caplog):
    app = make_app(
        f"sqlite:///{tmp_path}/empty.db", server_files, core_files, RECOVER_ON_START=False
    )
    assert not start_service(app)  # no schema yet (before ``db upgrade``): nothing runs
    app.extensions["glancesync.tasks"].shutdown()
    assert "not at the migration head" in caplog.text
    assert "Traceback" not in caplog.text


def test_own_running_task_is_alive_and_gets_heartbeats(app, hold_syncs):
    response = app.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    task_id = response.get_json()["taskId"]
    before = stored(app, task_id).heartbeat
    runner: TaskRunner = app.extensions["glancesync.tasks"]
    with app.app_context():
        runner.beat()
    assert stored(app, task_id).heartbeat >= before
    again = app.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert again.status_code == 200 and again.get_json()["taskId"] == task_id


def test_heartbeat_thread_refreshes_running_tasks(app, hold_syncs):
    task_id = app.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH).get_json()["taskId"]
    with app.app_context():
        old = utcnow() - timedelta(seconds=50)
        db.session.execute(
            Task.__table__.update().where(Task.task_id == task_id).values(heartbeat=old)
        )
        db.session.commit()
        db.session.remove()
    wait_until(lambda: stored(app, task_id).heartbeat > old + timedelta(seconds=40), 30)


def test_tasks_never_store_secrets(app):
    client = app.test_client()
    response = client.post("/v1/regions/Burgos/tasks", headers=AUTH)
    wait_for_task(client, response.headers["Location"], AUTH)
    client.post("/v1/regions/Caceres/tasks", headers=AUTH)
    app.extensions["glancesync.tasks"].shutdown(wait=True)
    with app.app_context():
        for task in db.session.scalars(select(Task)):
            text = json.dumps([task.user_name, task.message, task.images, task.worker])
            for secret in (ADMIN, SERVICE_PASSWORD, "cGFzczE=", "pass1"):
                assert secret not in text


# -- region list refresh -------------------------------------------------------------------
def test_region_list_is_refreshed(app, monkeypatch):
    now = [0.0]
    core = Core(app.config["CORE_CONFIG_FILE"], refresh=300, timer=lambda: now[0])
    gs = core.glancesync()
    calls = []
    for name, backend in gs.backends.items():
        real = backend.regions

        def counting(name=name, real=real):
            calls.append((name, now[0]))
            return real()

        monkeypatch.setattr(backend, "regions", counting)
    assert "Burgos" in core.regions() and "other:Madrid" in core.regions()
    now[0] = 299
    core.resolve("master:Burgos")
    assert calls == [("master", 0.0), ("other", 0.0)]
    now[0] = 301
    assert core.resolve("other:Madrid") == "other:Madrid"
    assert calls[2:] == [("other", 301)]  # only the target of the region asked for


def test_one_target_down_makes_only_its_regions_unavailable(app, monkeypatch):
    from glancesync.errors import BackendError

    with app.app_context():
        gs = Core.glancesync(app.extensions["glancesync.core"])

        def down():
            raise BackendError("other: Error retrieving region list. Cause: Keystone is down")

        monkeypatch.setattr(gs.backends["other"], "regions", down)
    client = app.test_client()
    assert client.get("/v1/regions/Burgos/images", headers=AUTH).status_code == 200
    response = client.get("/v1/regions/other:Madrid/images", headers=AUTH)
    assert response.status_code == 503
    # The component only; the cause goes to the log (issue 22).
    description = response.get_json()["error"]["description"]
    assert description == "The Keystone of target other cannot be reached or failed"


# -- overlapping runs (issue 11, item 2): the service's run ids -----------------------------
def test_a_task_run_is_dead_once_its_task_ended_or_its_worker_died(app):
    from app.tasks import run_is_dead

    ended = add_task(app, "Burgos", "otherhost:4242", age=1, status=FAILED)
    live = add_task(app, "Caceres", "otherhost:4242", age=1)
    gone = add_task(app, "other:Madrid", f"{HOST}:{dead_pid()}:abc", age=1, scope=process_scope())
    with app.app_context():
        assert run_is_dead(f"task:{ended}")
        assert not run_is_dead(f"task:{live}")
        assert run_is_dead(f"task:{gone}")
        assert not run_is_dead(f"task:{uuid.uuid4()}")  # another service's, perhaps
        assert run_is_dead(f"cli:{HOST}:{dead_pid()}:abcd")  # a CLI run of this host
        db.session.remove()


def test_a_task_syncs_as_its_own_run(app, monkeypatch):
    from app.tasks import LiveTask, run_is_dead
    from glancesync.engine import GlanceSync

    seen = {}
    original = GlanceSync.sync_region

    def spy(self, region, *args, **kwargs):
        seen.update(kwargs)
        return original(self, region, *args, **kwargs)

    monkeypatch.setattr(GlanceSync, "sync_region", spy)
    with app.app_context():
        live = LiveTask("Burgos", 60.0)
        status, _, _ = app.extensions["glancesync.tasks"]._sync("abc-123", "Burgos", live)
    assert status == "synced"
    assert seen["runs"].run_id == "task:abc-123" and seen["runs"].is_dead is run_is_dead
