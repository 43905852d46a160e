"""Races of service tasks (issue 21 items 1-5 and 7), each forced into its bad order.

Every test pauses or steps the actors at named points (a function monkeypatched to wait
on an event, or a lease-loop step called by the test itself at the moment the race
needs it); none sleeps hoping for an order. Each runs on SQLite and PostgreSQL (the
``app`` fixtures are parametrized over both).
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from app import broker as broker_module
from app import workers
from app.errors import ApiError
from app.models import FAILED, QUEUED, SYNCED, SYNCING, Task, db, db_now
from app.tasks import TaskRunner, start_sync
from app.tasks.groups import start_group
from glancesync.engine import GlanceSync
from tests.api.fakes import ADMIN
from tests.support.task_rows import add_task, stored
from tests.support.waiting import wait_until

pytestmark = pytest.mark.concurrency

AUTH = {"X-Auth-Token": ADMIN}


def runner_of(app) -> TaskRunner:
    return app.extensions["glancesync.tasks"]


def set_row(app, task_id: str, **values) -> None:
    with app.app_context():
        db.session.execute(update(Task).where(Task.task_id == task_id).values(**values))
        db.session.commit()
        db.session.remove()


def ended(app, task_id: str) -> Task:
    """The task once it left ``syncing`` (the sync's end is the event waited for)."""
    wait_until(lambda: stored(app, task_id).status != SYNCING, 20)
    return stored(app, task_id)


def db_time(app, seconds_ago: float = 0.0):
    with app.app_context():
        now = db_now(db.session)
        db.session.remove()
    return now - timedelta(seconds=seconds_ago)


# -- item 1: one identity per runner -------------------------------------------------------
def test_two_threads_asking_a_fresh_runner_for_its_identity_get_the_same_one(app, monkeypatch):
    """The request thread (claim) and the progress thread (report) ask at once: the first
    maker of an identity is held until a second thread made one too, if it ever does."""
    runner = runner_of(app)
    second_maker = threading.Event()
    calls = itertools.count()
    real = workers.new_worker

    def held_new_worker():
        if next(calls) == 0:
            second_maker.wait(60)  # returns at once when a second thread makes one
        else:
            second_maker.set()
        return real()

    monkeypatch.setattr(sys.modules["app.tasks.runner"], "new_worker", held_new_worker)
    seen: list[str] = []
    threads = [threading.Thread(target=lambda: seen.append(runner.worker.name)) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(seen) == 2 and seen[0] == seen[1] == runner.worker.name


def test_a_claim_stores_the_identity_the_runner_renews_with(app, monkeypatch):
    monkeypatch.setattr(TaskRunner, "launch", lambda self, task_id, region: None)
    runner = runner_of(app)
    queued = add_task(app, "Burgos", "", age=0, status=QUEUED)
    with app.app_context():
        assert runner.try_claim(queued, "Burgos")
        runner.beat()
    assert stored(app, queued).worker == runner.worker.name
    assert not runner.live(queued).lost.is_set()


# -- item 2: a fan-out group asks run_is_dead from the core's threads -----------------------
def ask_run_is_dead_while_planning(monkeypatch, run_id: str, answers: list) -> None:
    """Planning each region meets an upload marked ``run_id``: the core asks the group's
    ``runs.is_dead`` from its preparation threads (no application context there)."""
    import glancesync.engine as engine

    real = engine.classify

    def classify(images, tenant_id, runs, *args, **kwargs):
        answers.append(runs.is_dead(run_id))
        return real(images, tenant_id, runs, *args, **kwargs)

    monkeypatch.setattr(engine, "classify", classify)


def test_a_group_meeting_a_marker_of_a_task_of_this_database_syncs(app, monkeypatch):
    over = add_task(app, "Caceres", "otherhost:1:a", age=0, status=SYNCED)
    answers: list[bool] = []
    ask_run_is_dead_while_planning(monkeypatch, f"task:{over}", answers)
    client = app.test_client()
    response = client.post("/v1/tasks", json={"regions": ["Burgos", "other:Madrid"]}, headers=AUTH)
    assert response.status_code == 202
    ids = [task["taskId"] for task in response.get_json()["tasks"]]
    wait_until(lambda: all(stored(app, i).status != SYNCING for i in ids), 20)
    assert [stored(app, i).status for i in ids] == [SYNCED, SYNCED], stored(app, ids[0]).message
    assert answers and all(answers)  # an ended task's run is dead
    monkeypatch.undo()
    again = client.post("/v1/regions/other:Madrid/tasks", headers=AUTH).get_json()
    assert ended(app, again["taskId"]).status == SYNCED


def test_a_failed_group_preparation_gives_every_region_lock_back(app, monkeypatch):
    real = GlanceSync.view
    madrid_locked = threading.Event()

    def view(self, ref, *args, **kwargs):  # (a region's lock is taken before its view)
        if ref.full == "Burgos":  # raises once Madrid's preparation holds its lock
            assert madrid_locked.wait(60)
            raise RuntimeError("planning broke")
        madrid_locked.set()
        return real(self, ref, *args, **kwargs)

    monkeypatch.setattr(GlanceSync, "view", view)
    client = app.test_client()
    response = client.post("/v1/tasks", json={"regions": ["Burgos", "other:Madrid"]}, headers=AUTH)
    ids = [task["taskId"] for task in response.get_json()["tasks"]]
    wait_until(lambda: all(stored(app, i).status != SYNCING for i in ids), 20)
    assert [stored(app, i).message for i in ids] == ["planning broke"] * 2
    monkeypatch.undo()
    for region in ("Burgos", "other:Madrid"):  # neither lock file is still held
        again = client.post(f"/v1/regions/{region}/tasks", headers=AUTH).get_json()
        task = ended(app, again["taskId"])
        assert task.status == SYNCED, task.message


# -- item 3: a group never runs a task the lease loop claimed -------------------------------
def count_syncs(monkeypatch) -> Counter:
    runs: Counter = Counter()
    single, group = GlanceSync.sync_region, GlanceSync.sync_regions

    def sync_region(self, region, *args, **kwargs):
        runs[str(region)] += 1
        return single(self, region, *args, **kwargs)

    def sync_regions(self, regions, *args, **kwargs):
        runs.update(str(region) for region in regions)
        return group(self, regions, *args, **kwargs)

    monkeypatch.setattr(GlanceSync, "sync_region", sync_region)
    monkeypatch.setattr(GlanceSync, "sync_regions", sync_regions)
    return runs


def test_a_group_does_not_run_a_task_the_lease_loop_claimed_first(app, monkeypatch):
    runs = count_syncs(monkeypatch)
    runner = runner_of(app)
    real = TaskRunner.try_claim
    first = threading.Event()

    def lease_loop_first(self, task_id, region, launch=True):
        if not launch and not first.is_set():  # the group's claim, after the commit:
            first.set()
            self.claim_queued()  # this process's lease loop takes the row first
        return real(self, task_id, region, launch=launch)

    monkeypatch.setattr(TaskRunner, "try_claim", lease_loop_first)
    response = app.test_client().post("/v1/tasks", json={"regions": ["Burgos"]}, headers=AUTH)
    assert response.status_code == 202 and first.is_set()
    task_id = response.get_json()["tasks"][0]["taskId"]
    wait_until(lambda: stored(app, task_id).status != SYNCING, 20)
    runner.shutdown(wait=True)  # every job of the pool has ended
    assert stored(app, task_id).status == SYNCED
    assert runs["Burgos"] == 1


# -- item 4: a failure half way leaves no claim behind --------------------------------------
def test_an_error_half_way_through_a_group_ends_its_earlier_claims(app, monkeypatch):
    monkeypatch.setattr(TaskRunner, "submit", lambda *args: pytest.fail("nothing may run"))
    real = start_sync

    def second_fails(region, user, **kwargs):
        if region == "other:Madrid":
            raise RuntimeError("the database went away")
        return real(region, user, **kwargs)

    monkeypatch.setattr("app.tasks.groups.start_sync", second_fails)
    with app.app_context():
        with pytest.raises(RuntimeError):
            start_group(["Burgos", "other:Madrid"], "admin")
        db.session.remove()
    with app.app_context():
        first = db.session.scalars(
            db.select(Task).where(Task.region == "Burgos").order_by(Task.id)
        ).first()
        db.session.expunge(first)
        db.session.remove()
    assert first.status == FAILED
    assert first.message == "Not started: the group could not start: the database went away"
    assert runner_of(app).owned() == []


def test_an_error_half_way_through_a_broker_group_runs_what_it_claimed(app):
    runner = runner_of(app)
    add_task(app, "other:Madrid", "otherhost:1:a", age=0)  # a live sync elsewhere
    busy = add_task(app, "other:Madrid", "", age=0, status=QUEUED)
    free = add_task(app, "Burgos", "", age=0, status=QUEUED)

    def broker_down(task_id, region):
        raise ApiError(503, "The task broker cannot be reached")

    runner.dispatch = broker_down
    message = SimpleNamespace(retry=lambda **kwargs: pytest.fail("not a full worker"))
    with pytest.raises(ApiError):
        broker_module.handle_group(app, message, [(free, "Burgos"), (busy, "other:Madrid")])
    wait_until(lambda: stored(app, free).status != SYNCING, 20)
    assert stored(app, free).status == SYNCED
    assert stored(app, busy).status == QUEUED


# -- item 5: a queued task whose message was lost ----------------------------------------------
def test_a_queued_task_whose_message_was_lost_is_published_again(app_factory):
    app = app_factory(RECOVER_ON_START=False)  # the test steps the lease loop itself
    runner = runner_of(app)
    sent: list[tuple[str, str]] = []
    runner.dispatch = lambda task_id, region: sent.append((task_id, region))  # never delivered
    runner.republish_after = 60.0
    response = app.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    task_id = response.get_json()["taskId"]
    assert sent == [(task_id, "Burgos")] and stored(app, task_id).status == QUEUED
    with app.app_context():
        runner.claim_queued()  # within the interval: the message may be on its way
        assert sent == [(task_id, "Burgos")]
        set_row(app, task_id, updated=db_time(app, runner.republish_after + 1))
        runner.claim_queued()  # one interval later, no worker heard of it
        runner.claim_queued()  # and once only per interval
        db.session.remove()
    assert sent == [(task_id, "Burgos")] * 2


def test_a_message_a_worker_put_back_is_not_published_again(app_factory):
    app = app_factory(RECOVER_ON_START=False)
    runner = runner_of(app)
    sent: list[tuple[str, str]] = []
    runner.dispatch = lambda task_id, region: sent.append((task_id, region))
    queued = add_task(app, "Burgos", "", age=3600, status=QUEUED)
    runner.max_workers = 0  # a full worker puts the message back

    class Retry(Exception):
        pass

    message = SimpleNamespace(retry=lambda **kwargs: Retry())
    with pytest.raises(Retry):
        broker_module.handle_message(app, message, queued, "Burgos")
    with app.app_context():
        runner.claim_queued()
        db.session.remove()
    assert sent == []


# -- item 7: the queue timeout counts while the region is free ------------------------------
def test_a_follow_up_behind_a_long_sync_is_not_expired(app_factory):
    app = app_factory(RECOVER_ON_START=False, QUEUE_TIMEOUT=60)
    runner = runner_of(app)
    running = add_task(app, "Burgos", "otherhost:1:a", age=0)  # a live sync elsewhere
    follow_up = add_task(app, "Burgos", "", age=7200, status=QUEUED)  # queued 2 h ago
    with app.app_context():
        runner.sweep("Burgos")
        assert stored(app, follow_up).status == QUEUED
        set_row(app, running, status=SYNCED, updated=db_time(app))  # the sync ended now
        runner.sweep("Burgos")
        assert stored(app, follow_up).status == QUEUED  # free for 0 s, not 2 h
        set_row(app, running, updated=db_time(app, 61))  # the region free for 61 s
        runner.sweep("Burgos")
        db.session.remove()
    assert stored(app, follow_up).status == FAILED
