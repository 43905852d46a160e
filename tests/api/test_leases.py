"""Tasks as leases with fencing (issue 12 item 1, reference 10.7): worker identity, the database's
clock, conditional heartbeat and final write, the sweep of every process, ``queued``.

Two apps on one database stand for two server processes; a row written by hand stands
for a process elsewhere (another host, another pid namespace, a frozen one).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from app import leases, models
from app import tasks as tasks_module
from app.models import FAILED, QUEUED, SYNCING, Task, db, db_now
from app.regions import core
from app.tasks import INTERRUPTED, TaskRunner, start_sync
from tests.api.fakes import ADMIN
from tests.support.gated_uploads import GatedUploads, burgos_images
from tests.support.lease_rounds import LeaseRounds
from tests.support.task_rows import HOST, add_task, dead_pid, stored
from tests.support.waiting import wait_until

# Run on SQLite, PostgreSQL and MariaDB (tests/api/conftest.py).
pytestmark = [pytest.mark.all_databases, pytest.mark.concurrency]

AUTH = {"X-Auth-Token": ADMIN}
REPO = Path(__file__).resolve().parents[2]


def runner_of(app) -> TaskRunner:
    return app.extensions["glancesync.tasks"]


def gated(app, gates) -> None:
    with app.app_context():
        gs = core().glancesync()
        gs.backends = {name: GatedUploads(b, *gates) for name, b in gs.backends.items()}


@pytest.fixture
def gates():
    started, gate = threading.Event(), threading.Event()
    yield started, gate
    gate.set()  # never leave a sync thread waiting


def set_row(app, task_id: str, **values) -> None:
    with app.app_context():
        db.session.execute(update(Task).where(Task.task_id == task_id).values(**values))
        db.session.commit()
        db.session.remove()


# -- schema --------------------------------------------------------------------------------
def test_the_migrations_have_a_single_head():
    config = Config()
    config.set_main_option("script_location", str(REPO / "app" / "migrations"))
    scripts = ScriptDirectory.from_config(config)
    heads = scripts.get_heads()
    assert len(heads) == 1, heads
    # numbered in issue order: from the head down the numbers fall, to 0001; an issue that
    # needed no migration leaves its number unused (issues name the number they may take)
    history = [rev.revision for rev in scripts.walk_revisions()]
    assert all(len(rev) == 4 and rev.isdigit() for rev in history), history
    assert history == sorted(history, reverse=True) and history[-1] == "0001", history
    assert "0003" in history  # this lease columns


def test_the_database_allows_one_queued_and_one_syncing_task_per_region(app):
    add_task(app, "Burgos", "elsewhere:1:a", 0)
    add_task(app, "Burgos", "", 0, status=QUEUED)
    add_task(app, "Caceres", "", 0, status=QUEUED)
    with pytest.raises(IntegrityError):
        add_task(app, "Burgos", "", 0, status=QUEUED)


# -- identity --------------------------------------------------------------------------------
def test_each_runner_has_its_own_worker_identity(app_factory):
    first, second = runner_of(app_factory()).worker, runner_of(app_factory()).worker
    assert first.name != second.name
    assert first.name.startswith(f"{HOST}:") and first.scope


def test_a_pid_of_another_pid_namespace_means_nothing(app, hold_syncs):
    """Same host name, a pid that is dead here, but another boot/pid namespace: the task
    of that other container is alive as long as its heartbeat is fresh."""
    other = add_task(app, "Burgos", f"{HOST}:{dead_pid()}:abc", age=1, scope="boot/4026531")
    response = app.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert response.status_code == 200 and response.get_json()["taskId"] == other
    assert stored(app, other).status == SYNCING


# -- the database's clock ----------------------------------------------------------------------
def test_times_come_from_the_database_in_utc(app_factory, database_url, hold_syncs):
    """A PostgreSQL session in UTC+14 still stores and compares UTC: the task's times are
    now, and another process does not take its fresh heartbeat for a stale one."""
    options = {}
    if database_url.startswith("postgresql"):
        options = {"connect_args": {"options": "-c TimeZone=Pacific/Kiritimati"}}
    far_east = app_factory(SQLALCHEMY_ENGINE_OPTIONS=options)
    other = app_factory()
    with far_east.app_context():
        if options:
            zone = db.session.execute(select(db.func.current_setting("TimeZone"))).scalar()
            assert zone == "Pacific/Kiritimati"
        skew = db_now(db.session) - models.utcnow()
        assert abs(skew) < timedelta(seconds=5)
    body = far_east.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH).get_json()
    task_id = body["taskId"]
    assert abs(stored(far_east, task_id).created - models.utcnow()) < timedelta(seconds=5)
    with other.app_context():
        assert runner_of(other).sweep() == 0
    assert stored(other, task_id).status == SYNCING


def test_a_process_clock_minutes_off_keeps_its_tasks_alive(app_factory, monkeypatch, hold_syncs):
    skewed = app_factory()
    other = app_factory()
    late = models.utcnow
    monkeypatch.setattr(models, "utcnow", lambda: late() - timedelta(minutes=10))
    rounds = LeaseRounds(runner_of(skewed), monkeypatch)
    task_id = skewed.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH).get_json()
    task_id = task_id["taskId"]
    rounds.wait(3)  # two whole rounds of the skewed process renewed the task
    with other.app_context():
        assert runner_of(other).sweep() == 0
    assert stored(other, task_id).status == SYNCING


# -- heartbeat and sweep -----------------------------------------------------------------------
def test_the_heartbeat_goes_on_when_progress_writes_fail(app, monkeypatch, hold_syncs):
    def broken(*args, **kwargs):
        raise OperationalError("UPDATE task SET progress", {}, Exception("disk full"))

    monkeypatch.setattr(leases, "store_progress", broken)
    task_id = app.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH).get_json()
    task_id = task_id["taskId"]
    live = runner_of(app).live(task_id)
    live.tracker("Burgos", "img02", 100)(10)  # progress to write: each write fails
    first = stored(app, task_id).heartbeat
    wait_until(lambda: stored(app, task_id).heartbeat > first, 3)
    assert not live.lost.is_set()


def test_every_serving_process_sweeps_dead_tasks_on_its_own(app_factory):
    """No POST, no restart: the lease loop of an idle process fails the dead task, so a
    GET does not show it syncing for more than DEAD_AFTER and one interval."""
    serving = app_factory(DEAD_AFTER=1.0)
    task_id = add_task(serving, "Burgos", "otherhost:4242:abc", age=0.5)
    assert stored(serving, task_id).status == SYNCING
    wait_until(lambda: stored(serving, task_id).status == FAILED, 3)
    assert stored(serving, task_id).message == INTERRUPTED


def test_a_process_that_lost_its_lease_stops_and_never_writes_the_row(app_factory, gates, caplog):
    """The sweeper of another process judged the task dead (e.g. this one was frozen) and
    a new task took the region: the old runner cancels its upload at its next heartbeat,
    deletes the half image, and leaves both rows as the others wrote them."""
    running = app_factory(PROGRESS_INTERVAL=0.05)
    gated(running, gates)
    location = running.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    task_id = location.get_json()["taskId"]
    assert gates[0].wait(60), "the upload did not start"
    set_row(running, task_id, status=FAILED, message=INTERRUPTED)
    newer = add_task(running, "Burgos", "otherhost:1:new", age=0)
    live = runner_of(running).live(task_id)
    wait_until(live.lost.is_set, 5.0, what="the lost lease to be noticed")
    assert live.cancel.is_set()
    gates[1].set()
    wait_until(lambda: runner_of(running).live(task_id) is None, 5.0)
    old = stored(running, task_id)
    assert (old.status, old.message, old.images) == (FAILED, INTERRUPTED, "[]")
    assert stored(running, newer).status == SYNCING
    assert stored(running, newer).worker == "otherhost:1:new"
    assert "img02" not in burgos_images(running)
    assert "lease lost" in caplog.text


def test_a_frozen_process_stops_before_its_next_renewal(app_factory, gates, monkeypatch):
    """No renewal for DEAD_AFTER - 2 intervals (SIGSTOP, a paused VM): the sync stops at its
    next chunk without waiting for the database to tell. The runner's clock is driven (the
    lease loop's first round is 10 s away: it never runs here)."""
    clock = [time.monotonic()]
    monkeypatch.setattr(tasks_module.live, "monotonic", lambda: clock[0])
    running = app_factory(DEAD_AFTER=30.0, HEARTBEAT_INTERVAL=10.0)
    gated(running, gates)
    task_id = running.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    task_id = task_id.get_json()["taskId"]
    assert gates[0].wait(60)
    live = runner_of(running).live(task_id)
    assert not live.should_stop()
    clock[0] += 10.001  # frozen past DEAD_AFTER - 2 x HEARTBEAT_INTERVAL
    wait_until(live.should_stop, 2)
    gates[1].set()
    wait_until(lambda: runner_of(running).live(task_id) is None, 5.0)
    assert stored(running, task_id).status == SYNCING  # left to the sweepers
    assert "img02" not in burgos_images(running)


# -- final write -----------------------------------------------------------------------------
def test_the_final_write_is_retried_on_database_errors(app_factory, monkeypatch):
    running = app_factory(FINAL_WRITE_ATTEMPTS=3)
    real, calls = leases.finish, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("UPDATE task", {}, Exception("connection reset"))
        return real(*args, **kwargs)

    monkeypatch.setattr(leases, "finish", flaky)
    task_id = running.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    task_id = task_id.get_json()["taskId"]
    wait_until(lambda: stored(running, task_id).status != SYNCING, 10)
    assert stored(running, task_id).status == "synced" and len(calls) == 3


def test_a_final_write_that_keeps_failing_is_logged(app_factory, monkeypatch, caplog):
    running = app_factory(FINAL_WRITE_ATTEMPTS=2)

    def broken(*args, **kwargs):
        raise OperationalError("UPDATE task", {}, Exception("connection reset"))

    monkeypatch.setattr(leases, "finish", broken)
    caplog.set_level(logging.WARNING, "GlanceSync-API")
    task_id = running.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    task_id = task_id.get_json()["taskId"]
    wait_until(lambda: runner_of(running).live(task_id) is None, 10)
    assert f"Task {task_id} of region Burgos: final status synced not written" in caplog.text


# -- queued ------------------------------------------------------------------------------------
def test_a_follow_up_is_queued_behind_the_running_sync_then_runs(app_factory, gates):
    running = app_factory(PROGRESS_INTERVAL=0.05)
    gated(running, gates)
    first = running.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH).get_json()
    assert gates[0].wait(60)
    with running.test_request_context():
        queued, created = start_sync("Burgos", "scheduler", follow_up=True)
        again, created_again = start_sync("Burgos", "listener", follow_up=True)
        queued_id = queued.task_id
        assert (queued.status, queued.user_name, created) == (QUEUED, "scheduler", True)
        assert (again.task_id, created_again) == (queued_id, False)
    post = running.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert (post.status_code, post.get_json()["taskId"]) == (200, first["taskId"])
    listed = running.test_client().get("/v1/regions/Burgos/tasks", headers=AUTH).get_json()
    assert [t["status"] for t in listed["tasks"]] == [QUEUED, SYNCING]
    gates[1].set()
    wait_until(lambda: stored(running, queued_id).status == "synced", 10)
    assert stored(running, first["taskId"]).status == "synced"


def test_a_queued_task_nobody_claims_ends_failed(app_factory):
    serving = app_factory(QUEUE_TIMEOUT=0.5)
    # workers claim (a broker) and none is there; the region is free (a task behind a
    # running sync is not expired: tests/api/test_task_races.py)
    runner_of(serving).dispatch = lambda task_id, region: None
    queued = add_task(serving, "Burgos", "", age=0, status=QUEUED)
    wait_until(lambda: stored(serving, queued).status == FAILED, 3)
    assert stored(serving, queued).message == (
        "Not started: no server claimed this queued task within 0.5 s"
    )


def test_a_queued_task_of_a_free_region_is_claimed_by_a_serving_process(app_factory):
    serving = app_factory()
    queued = add_task(serving, "Burgos", "", age=0, status=QUEUED)
    wait_until(lambda: stored(serving, queued).status == "synced", 10)
    assert stored(serving, queued).worker == runner_of(serving).worker.name


def test_cancel_of_a_queued_task_ends_it_at_once(app):
    add_task(app, "Burgos", "otherhost:4242:abc", age=0)
    queued = add_task(app, "Burgos", "", age=0, status=QUEUED)
    path = f"/v1/regions/Burgos/tasks/{queued}"
    assert app.test_client().delete(path, headers=AUTH).status_code == 409
    response = app.test_client().post(f"{path}/cancel", headers=AUTH)
    assert response.status_code == 202
    assert (response.get_json()["status"], response.get_json()["message"]) == (
        FAILED,
        "cancelled",
    )


# -- the service stopping ----------------------------------------------------------------------
def test_stopping_the_service_ends_running_syncs_failed(app_factory, gates, monkeypatch):
    """What the SIGTERM handler of a gunicorn worker runs: every sync stops between two
    chunks, its half image deleted, and ends failed with the message of the stop."""
    running = app_factory(PROGRESS_INTERVAL=0.05)
    gated(running, gates)
    task_id = running.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    task_id = task_id.get_json()["taskId"]
    assert gates[0].wait(60)
    done: list[bool] = []
    stopper = threading.Thread(target=lambda: done.append(runner_of(running).stop_syncs()))
    stopper.start()
    wait_until(runner_of(running).live(task_id).cancel.is_set, 5.0)
    gates[1].set()
    stopper.join(10)
    assert done == [True]
    task = stored(running, task_id)
    assert (task.status, task.message) == (FAILED, "Sync interrupted: the service stopped")
    assert "img02" not in burgos_images(running)
    queued = add_task(running, "Caceres", "", age=0, status=QUEUED)
    LeaseRounds(runner_of(running), monkeypatch).wait(3)  # a stopping runner claims nothing
    assert stored(running, queued).status == QUEUED
    late = running.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert (late.status_code, late.get_json()["status"]) == (202, QUEUED)  # left to others
