"""The model test of the task lifecycle (issue 21, deliverable 2), on SQLite and PostgreSQL.

Hypothesis drives two serving processes of one database (own worker identities), their
lease loops, POSTs, groups, cancels, broker deliveries, duplicates and lost messages,
syncs ending as it picks, a process frozen and thawed or restarted, and the database's
clock, against the real lease SQL (tests/support/task_machine.py). Every interleaving
is chosen by hypothesis; nothing waits on a thread.

``GLANCESYNC_HYPOTHESIS_PROFILE=long`` runs the long profile (docs/reliability.md);
``GLANCESYNC_MODEL_INVARIANTS=a,b`` checks only those invariants (to shrink one of them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from flask import Flask
from hypothesis.stateful import run_state_machine_as_test
from sqlalchemy import event

from app.models import Task, db
from tests.support.service_app import make_app
from tests.support.task_invariants import INVARIANTS
from tests.support.task_machine import TaskLifecycle, profile, replay
from tests.support.task_world import SETTINGS

pytestmark = pytest.mark.concurrency


@pytest.fixture
def model_apps(database_url, server_files, core_files) -> Iterator[list[Flask]]:
    """Two apps on the test database, their runners built afresh by each example.

    Commits are not flushed to disk (a crash of the test database loses nothing the
    model needs): the model commits at every step, and fsync would be most of its time."""
    apps = [make_app(database_url, server_files, core_files, **SETTINGS) for _ in range(2)]
    for app in apps:
        with app.app_context():
            event.listen(db.engine, "connect", _no_fsync)
            db.engine.dispose()  # pooled connections were made before the listener
    yield apps
    for app in apps:
        app.extensions["glancesync.tasks"].shutdown(wait=False)
        with app.app_context():
            db.session.query(Task).delete()
            db.session.commit()
            db.session.remove()
            db.engine.dispose()


def _no_fsync(connection, record) -> None:
    cursor = connection.cursor()
    if type(connection).__module__.startswith("sqlite3"):
        cursor.execute("PRAGMA synchronous = OFF")
    else:
        cursor.execute("SET synchronous_commit = off")
        connection.commit()
    cursor.close()


def checked_invariants() -> frozenset[str]:
    chosen = os.environ.get("GLANCESYNC_MODEL_INVARIANTS")
    return frozenset(chosen.split(",")) if chosen else frozenset(INVARIANTS)


def test_the_task_lifecycle_holds_under_every_interleaving(model_apps):
    TaskLifecycle.apps = model_apps
    TaskLifecycle.checked = checked_invariants()
    run_state_machine_as_test(TaskLifecycle, settings=profile())


# -- shrunk counterexamples, replayed step by step (each fails on main bf0a2e5) ---------------
@pytest.fixture
def state(model_apps):
    """Replays a shrunk example: ``state.check()`` checks every invariant."""
    machines = []

    def start(broker: bool):
        machines.append(replay(model_apps, broker))
        return machines[-1]

    yield start
    for machine in machines:
        machine.teardown()


def test_a_queued_task_whose_message_was_lost_is_claimed_within_one_lease(state):
    """Item 5: with a broker, no process claims a queued task; its message lost, the
    region used to wait QUEUE_TIMEOUT. Now it is published again after one lease
    (DEAD_AFTER) and claimed (free_queued_claimed, checked after every tick)."""
    model = state(broker=True)
    model.post(process=0, region="Burgos", follow_up=False, interrupt=None)
    model.lose(message=0)
    model.check()
    for _ in range(3):  # 9 model seconds: past one lease and one round
        model.tick(seconds=3.0, order=[0, 1], slow=False)
        model.check()


def test_a_failing_member_of_a_group_strands_no_earlier_claim(state):
    """Item 4: the second member's start_sync fails; the first one, claimed, is neither
    launched nor ended and its lease is renewed forever (claimed_is_launched)."""
    model = state(broker=False)
    model.post_group(process=0, regions=["Burgos", "Caceres"], interrupt=(2, "crash"))
    model.check()


def test_a_group_member_claimed_by_the_lease_loop_runs_once(state):
    """Item 3: the lease loop of the requesting process claims and launches a member
    between its insert and the group's claim; the group runs it again
    (one_running_sync_per_region, then one_sync_per_task)."""
    model = state(broker=False)
    model.post_group(process=0, regions=["Burgos", "Caceres"], interrupt=(1, 0))
    model.check()
    model.finish(job=0, outcome="ok")
    model.finish(job=0, outcome="ok")
    model.check()


def test_a_runner_stops_before_another_process_sweeps_its_task(state):
    """Item 8: the renewal's commit took SLOW_RENEWAL (1 s) and the runner timed its
    lease from after it; frozen, then thawed right after another process failed the
    task, it still believes it holds it: its success is lost (success_ends_synced)."""
    model = state(broker=False)
    model.post(process=0, region="Burgos", follow_up=False, interrupt=None)
    model.tick(seconds=0.5, order=[0, 1], slow=True)  # process 0 renews, slowly
    model.freeze(process=0)
    model.tick(seconds=3.0, order=[0, 1], slow=False)
    model.tick(seconds=1.0, order=[0, 1], slow=False)  # process 1 fails the task
    model.check()
    model.thaw()
    model.finish(job=0, outcome="ok")
    model.check()


def test_a_follow_up_waiting_behind_a_long_sync_is_not_expired(state):
    """Item 7: QUEUE_TIMEOUT counted from ``created`` fails a follow-up that waits
    behind a sync longer than the timeout (follow_up_not_expired)."""
    model = state(broker=False)
    model.post(process=0, region="Burgos", follow_up=False, interrupt=None)
    model.post(process=1, region="Burgos", follow_up=True, interrupt=None)
    for _ in range(4):
        model.tick(seconds=3.0, order=[0, 1], slow=False)
        model.check()


def test_a_group_of_a_region_with_a_killed_upload_prepares(state):
    """Item 2: the group's preparation asks run_is_dead about the killed task's marker
    in the engine's pool, outside an application context (engine_callbacks_work)."""
    model = state(broker=False)
    model.post_group(process=0, regions=["Burgos", "Caceres"], interrupt=None)
    model.restart(process=0)  # kill -9 mid-sync: its uploads stay marked
    model.tick(seconds=3.0, order=[0, 1], slow=False)
    model.tick(seconds=3.0, order=[0, 1], slow=False)  # swept
    model.check()
    model.post_group(process=1, regions=["Burgos", "Caceres"], interrupt=None)
    model.finish(job=0, outcome="ok")
    model.check()


def test_the_model_s_own_happy_path_holds(state, model_apps):
    """The harness itself: a POST, a follow-up, a cancel, a sweep of a restarted process,
    a delivered message: every invariant holds and the rows end as the service says."""
    model = state(broker=False)
    model.post(process=0, region="Burgos", follow_up=False, interrupt=None)
    model.post(process=1, region="Burgos", follow_up=True, interrupt=None)
    model.finish(job=0, outcome="ok")
    model.tick(seconds=1.0, order=[1, 0], slow=False)  # the follow-up is claimed
    model.check()
    model.cancel(process=0, region="Burgos")
    model.tick(seconds=1.0, order=[0, 1], slow=False)  # the progress round sees it
    model.finish(job=0, outcome="ok")
    model.check()
    model.post(process=0, region="Caceres", follow_up=False, interrupt=None)
    model.restart(process=0)
    model.tick(seconds=3.0, order=[0, 1], slow=False)
    model.tick(seconds=3.0, order=[0, 1], slow=False)
    model.check()
    with model_apps[0].app_context():
        tasks = db.session.query(Task).order_by(Task.id).all()
        statuses = [(t.region, t.status, t.message) for t in tasks]
        db.session.remove()
    assert statuses == [
        ("Burgos", "synced", "synchronised"),
        ("Burgos", "failed", "Sync cancelled"),
        ("Caceres", "failed", "Sync interrupted: the server process running it stopped"),
    ]
