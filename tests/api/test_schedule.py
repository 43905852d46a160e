"""[schedule] (issue 17): one scheduler fires across processes, through a lease in the
database; its runs are ordinary tasks of user ``schedule``. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, select

from app.models import Task, db
from app.schedule import Scheduler, SchedulerLease, next_run_after
from app.settings import ScheduleSettings, SettingsError, read_settings
from tests.api.fakes import ADMIN
from tests.support.service_app import wait_for_task

START = datetime(2026, 11, 30, 4, 0, 0)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def lease_free(app_factory):
    """No lease row before or after (the session database is shared)."""
    app = app_factory()

    def wipe() -> None:
        with app.app_context():
            db.session.execute(delete(SchedulerLease))
            db.session.commit()
            db.session.remove()

    wipe()
    yield app
    wipe()


def schedulers(app_factory, count: int, clock: Clock, fired: list, **schedule):
    """``count`` schedulers, each in its own app (as in separate worker processes)."""
    settings = ScheduleSettings(**schedule)
    return [
        Scheduler(
            app_factory(),
            settings,
            tick=1.0,
            lease_seconds=5.0,
            clock=clock,
            on_fire=lambda i=i: fired.append((i, clock.now)),
        )
        for i in range(count)
    ]


def test_three_processes_fire_each_run_exactly_once(app_factory, lease_free):
    clock, fired = Clock(), []
    procs = schedulers(app_factory, 3, clock, fired, interval=10)
    for _second in range(61):
        for proc in procs:
            proc.run_once()
        clock.now += timedelta(seconds=1)
    times = [moment for _, moment in fired]
    assert times == [START + timedelta(seconds=s) for s in (10, 20, 30, 40, 50, 60)]
    assert len({who for who, _ in fired}) == 1  # the lease holder, always the same


def test_another_process_takes_over_when_the_holder_dies(app_factory, lease_free):
    clock, fired = Clock(), []
    first, second = schedulers(app_factory, 2, clock, fired, interval=10)
    for _second in range(12):
        first.run_once()
        second.run_once()
        clock.now += timedelta(seconds=1)
    assert fired == [(0, START + timedelta(seconds=10))]
    for _second in range(30):  # the first one is dead: no more renewals
        second.run_once()
        clock.now += timedelta(seconds=1)
    assert [who for who, _ in fired] == [0, 1, 1, 1]
    # The run due at 20 s was not lost, only late by at most the lease time.
    assert fired[1][1] <= START + timedelta(seconds=20 + 5 + 1)


def test_cron_runs_follow_the_expression(app_factory, lease_free):
    clock, fired = Clock(), []
    (proc,) = schedulers(app_factory, 1, clock, fired, cron="*/15 * * * *")
    for _minute in range(61):
        proc.run_once()
        clock.now += timedelta(minutes=1)
    assert [moment.minute for _, moment in fired] == [15, 30, 45, 0]


def test_a_scheduled_run_makes_one_schedule_task_per_default_region(app_factory, lease_free):
    app = lease_free
    clock = Clock()
    proc = Scheduler(app, ScheduleSettings(interval=60), clock=clock)
    proc.run_once()
    clock.now += timedelta(seconds=60)
    assert proc.run_once()
    with app.app_context():
        tasks = list(db.session.scalars(select(Task)))
        db.session.remove()
    assert sorted(task.region for task in tasks) == ["Burgos", "Caceres"]  # reference 7.3
    assert {task.user_name for task in tasks} == {"schedule"}
    client = app.test_client()
    for task in tasks:
        location = f"/v1/regions/{task.region}/tasks/{task.task_id}"
        body = wait_for_task(client, location, {"X-Auth-Token": ADMIN})
        assert body["user"] == "schedule"


def test_target_entries_are_accepted_in_regions(app_factory, lease_free):
    app = lease_free
    clock = Clock()
    schedule = ScheduleSettings(interval=60, regions=("other:", "Burgos"))
    proc = Scheduler(app, schedule, clock=clock)
    proc.run_once()
    clock.now += timedelta(seconds=60)
    assert proc.run_once()
    with app.app_context():
        regions = sorted(db.session.scalars(select(Task.region)))
        db.session.remove()
    assert regions == ["Burgos", "other:Madrid"]
    app.extensions["glancesync.tasks"].shutdown(wait=True)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("INTERVAL = 60\nCRON = * * * * *", "Set INTERVAL or CRON"),
        ("INTERVAL = soon", "must be a number of seconds, not 'soon'"),
        ("INTERVAL = 0", "must be more than 0 seconds"),
        ("CRON = 61 * * * *", "not a valid cron expression"),
    ],
)
def test_bad_schedule_settings_stop_the_service_with_a_clear_message(tmp_path, section, message):
    path = tmp_path / "fiware-glancesync.cfg"
    path.write_text(
        "[openstack]\nKEYSTONE_URL = http://k\nADM_USER = u\nADM_PASS = p\n"
        f"ADM_TENANT_NAME = t\n\n[schedule]\n{section}\n"
    )
    with pytest.raises(SettingsError, match=message) as error:
        read_settings(str(path), "unused")
    assert str(path) in str(error.value)


def test_schedule_and_notification_settings_are_read(tmp_path):
    path = tmp_path / "fiware-glancesync.cfg"
    path.write_text(
        "[openstack]\nKEYSTONE_URL = http://k\nADM_USER = u\nADM_PASS = p\nADM_TENANT_NAME = t\n"
        "[schedule]\nCRON = 0 3 * * *\nREGIONS = master: other:Madrid\n"
        "[notifications]\nTRANSPORT_URL = rabbit://u:secret@h:5672/v\nQUIET = 0.5\n"
    )
    settings = read_settings(str(path), "unused")
    assert settings.schedule == ScheduleSettings(None, "0 3 * * *", ("master:", "other:Madrid"))
    assert settings.notifications.quiet == 0.5
    assert settings.notifications.max_wait == 10.0
    assert settings.notifications.topics == ("notifications",)
    assert "secret" not in repr(settings)


def test_next_run_after():
    assert next_run_after(ScheduleSettings(interval=90), START) == START + timedelta(seconds=90)
    assert next_run_after(ScheduleSettings(cron="30 4 * * *"), START) == START.replace(minute=30)
