"""A runner stops its own sync before any other process may take its task over (issue 21
item 8): ``DEAD_AFTER - 2 x HEARTBEAT_INTERVAL`` after its last renewal that held, timed
from before the renewal statement; a service whose ``DEAD_AFTER`` is under
``3 x HEARTBEAT_INTERVAL`` refuses to start. The runner's clock is driven by the test
(``app.tasks.live.monotonic``), so nothing here waits for time to pass.
"""

from __future__ import annotations

import pytest

from app import leases
from app.models import QUEUED
from app.settings import SettingsError
from app.tasks import check_lease_timing, lease_timing_problem, live
from tests.support.manage_process import manage
from tests.support.task_rows import add_task

pytestmark = pytest.mark.concurrency

DEAD_AFTER, INTERVAL = 60.0, 10.0
OWN_LEASE = DEAD_AFTER - 2 * INTERVAL  # 40 s


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    driven = Clock(1000.0)
    monkeypatch.setattr(live, "monotonic", driven)
    return driven


@pytest.fixture
def claimed(app_factory, clock):
    """A runner (its lease loop waits a whole interval: it never runs during a test) that
    claimed a task of Burgos at t = 1000 without launching its sync."""
    app = app_factory(DEAD_AFTER=DEAD_AFTER, HEARTBEAT_INTERVAL=INTERVAL)
    runner = app.extensions["glancesync.tasks"]
    task_id = add_task(app, "Burgos", "", age=0, status=QUEUED)
    with app.app_context():
        assert runner.try_claim(task_id, "Burgos", launch=False)
    yield app, runner, runner.live(task_id)
    runner.release(task_id)


def test_the_sync_stops_two_intervals_before_others_may_judge_it_dead(claimed, clock):
    _, _, task = claimed
    assert task.renewed == 1000.0
    clock.now = 1000.0 + OWN_LEASE - 0.001
    assert not task.should_stop()
    clock.now = 1000.0 + OWN_LEASE + 0.001
    assert task.should_stop()  # 20 s before DEAD_AFTER: no sweeper can have failed it yet


def test_a_renewal_is_timed_from_before_its_statement(claimed, clock, monkeypatch):
    """A renewal that takes 5 s (a slow database): the heartbeat it stored may be as old
    as the statement's start, so the runner's own lease counts from there."""
    app, runner, task = claimed
    real = leases.heartbeat

    def slow(task_id: str, worker: str) -> bool:
        clock.now += 5.0
        return real(task_id, worker)

    monkeypatch.setattr(leases, "heartbeat", slow)
    clock.now = 1030.0
    with app.app_context():
        runner.beat()
    assert task.renewed == 1030.0 and not task.lost.is_set()
    clock.now = 1030.0 + OWN_LEASE + 0.001
    assert task.should_stop()


def test_a_runner_frozen_past_its_own_lease_loses_the_task_without_asking(claimed, clock):
    app, runner, task = claimed
    clock.now = 1000.0 + OWN_LEASE + 0.001
    with app.app_context():
        runner.beat()
    assert task.lost.is_set() and task.cancel.is_set()


@pytest.mark.parametrize(("dead_after", "fine"), [(30.0, True), (29.9, False), (10.0, False)])
def test_dead_after_under_three_intervals_is_refused(dead_after, fine):
    config = {"DEAD_AFTER": dead_after, "HEARTBEAT_INTERVAL": 10.0}
    problem = lease_timing_problem(config)
    assert (problem is None) == fine
    if not fine:
        assert problem.startswith("ERROR: DEAD_AFTER") and "\n" not in problem
        with pytest.raises(SettingsError):
            check_lease_timing(config)


@pytest.mark.parametrize("command", [["runserver", "-d", "-r"], ["gunicornserver"]])
def test_a_service_with_dead_after_too_short_refuses_to_start(
    repo_root, tmp_path, server_files, command
):
    flask = tmp_path / "config.py"
    flask.write_text("DEAD_AFTER = 20.0\nHEARTBEAT_INTERVAL = 10.0\n")
    env = {
        **server_files,
        "GLANCESYNCAPP_CONFIG": str(flask),
        "GLANCESYNCAPP_DATABASE_PATH": str(tmp_path / "data"),
    }
    result = manage(repo_root, tmp_path, *command, env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [lease_timing_problem(
        {"DEAD_AFTER": 20.0, "HEARTBEAT_INTERVAL": 10.0}
    )]  # fmt: skip
