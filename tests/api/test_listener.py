"""The listener's side of the tasks (issue 17), without a broker: debounced events become
``notifications`` tasks; a region still syncing gets one queued task behind it, never lost."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from app.events import EventFilter
from app.listener import Listener
from app.models import Task, db
from app.tasks import TaskRunner
from tests.support.task_rows import add_task


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def listener(app):
    settings = app.config["SETTINGS"]
    notifications = dataclasses.replace(settings.notifications, transport_url="rabbit://x/")
    app.config["SETTINGS"] = dataclasses.replace(settings, notifications=notifications)
    clock = Clock()
    made = Listener(app, clock)
    made.filter = EventFilter("Valladolid", "tenant1id", [("Burgos", None), ("Caceres", None)])
    return made, clock


def add_running(app, region: str) -> str:
    """A task this process runs (another sync of the region, e.g. a POST's)."""
    runner = app.extensions["glancesync.tasks"]
    task_id = add_task(app, region, runner.worker.name, age=0, scope=runner.worker.scope)
    runner.reserve(task_id, region)
    return task_id


def tasks(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = db.session.scalars(select(Task).order_by(Task.id)).all()
        result = [(task.region, task.user_name, task.status) for task in rows]
        db.session.remove()
    return result


def test_a_burst_of_events_makes_one_notifications_task_per_region(app, listener, monkeypatch):
    monkeypatch.setattr(TaskRunner, "launch", lambda self, task_id, region: None)
    made, clock = listener
    for _step in range(10):
        made.debouncer.add(["Burgos", "Caceres"])
        clock.now += 0.5
    assert made.debouncer.take_due() == []
    clock.now += 2
    made._start(made.debouncer.take_due())
    assert tasks(app) == [
        ("Burgos", "notifications", "syncing"),
        ("Caceres", "notifications", "syncing"),
    ]
    assert made.debouncer.pending() == []


def test_a_region_still_syncing_gets_one_queued_task_behind_it(app, listener, monkeypatch):
    monkeypatch.setattr(TaskRunner, "launch", lambda self, task_id, region: None)
    made, clock = listener
    add_running(app, "Burgos")
    made._start(["Burgos"])
    assert tasks(app) == [("Burgos", "old", "syncing"), ("Burgos", "notifications", "queued")]
    assert made.debouncer.pending() == []  # the queued task will see the change
    clock.now += made.settings.quiet
    made._start(["Burgos"])  # more events meanwhile: still one queued task, never more
    assert tasks(app) == [("Burgos", "old", "syncing"), ("Burgos", "notifications", "queued")]


def test_the_region_list_is_read_again_every_regions_refresh(app, listener):
    made, clock = listener
    app.config["REGIONS_REFRESH"] = 10.0
    made.filter.regions = []
    made._refresh_regions()
    assert [region for region, _ in made.filter.regions] == ["Burgos", "Caceres"]
