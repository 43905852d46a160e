"""The migrations on SQLite, PostgreSQL and MariaDB: up, down with history, up again; the
per-region rules and the lease times as the migrated schema keeps them (issue 24 item 2).

Each test migrates a database of its own (the session's database stays at the head for
the other modules).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select, update
from sqlalchemy.exc import IntegrityError

from app import create_app
from app.models import FAILED, QUEUED, SYNCED, SYNCING, Task, db, db_now, utcnow
from tests.api.fakes import FakeValidator
from tests.support.databases import fresh_database

pytestmark = pytest.mark.all_databases


def kind_of(database_url: str) -> str:
    return {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mariadb"}[
        database_url.split(":", 1)[0].split("+", 1)[0]
    ]


@pytest.fixture
def empty_app(database_url, server_files, tmp_path) -> Iterator[Flask]:
    """An app on a new, empty database of the kind of this run's ``database_url``."""
    kind = kind_of(database_url)

    @contextmanager
    def sqlite() -> Iterator[str]:
        yield "sqlite:///" + str(tmp_path / "migrations.db")

    with sqlite() if kind == "sqlite" else fresh_database(kind) as url:
        app = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": url,
                "CONFIGURE_LOGGING": False,
                "TOKEN_VALIDATOR": FakeValidator(),
            },
            environ=server_files,
        )
        with app.app_context():
            yield app
            db.session.remove()
            db.engine.dispose()


def to(revision: str) -> None:
    """Migrate to ``revision``; the session first ends its transaction, whose metadata
    lock would make MySQL's ALTER TABLE wait for ever."""
    db.session.remove()
    if revision == "base":
        downgrade(revision=revision)
    else:
        upgrade(revision=revision)


def add(region: str, status: str, **values) -> str:
    now = utcnow()
    task_id = str(uuid.uuid4())
    row = {"created": now, "updated": now, "heartbeat": now, "worker": "", **values}
    db.session.add(Task(task_id=task_id, region=region, status=status, images="[]", **row))
    db.session.commit()
    return task_id


def history() -> None:
    for status in (SYNCED, FAILED, SYNCED, SYNCING, QUEUED):
        add("Burgos", status)


def test_up_down_with_history_and_up_again(empty_app):
    to("head")
    history()
    db.session.remove()
    downgrade(revision="0005")  # the revision before this issue's, with the history kept
    assert db.session.execute(select(Task.status)).scalars().all().count(SYNCED) == 2
    to("head")
    add("Caceres", SYNCED)
    with pytest.raises(IntegrityError):
        add("Burgos", QUEUED)
    to("base")
    assert "task" not in inspect(db.engine).get_table_names()
    to("head")
    history()


def test_a_region_keeps_its_history_beside_one_queued_and_one_syncing_task(empty_app):
    to("head")
    history()
    for status in (QUEUED, SYNCING):
        with pytest.raises(IntegrityError):
            add("Burgos", status)
        db.session.rollback()
    # the syncing task ends: the queued one may take its place
    db.session.execute(update(Task).where(Task.status == SYNCING).values(status=SYNCED))
    db.session.execute(update(Task).where(Task.status == QUEUED).values(status=SYNCING))
    db.session.commit()
    add("Burgos", QUEUED)
    statuses = db.session.execute(select(Task.status)).scalars().all()
    assert sorted(statuses) == sorted([SYNCED, FAILED, SYNCED, SYNCED, SYNCING, QUEUED])


def test_lease_times_keep_their_microseconds(empty_app):
    """A heartbeat is compared for equality with the value written (MySQL's plain DATETIME
    would round it to the second)."""
    to("head")
    beat = db_now(db.session).replace(microsecond=123456)
    task_id = add("Burgos", SYNCING, heartbeat=beat)
    db.session.remove()
    stored = db.session.execute(select(Task).where(Task.task_id == task_id)).scalar_one()
    assert stored.heartbeat == beat
    matched = db.session.execute(
        update(Task).where(Task.task_id == task_id, Task.heartbeat == beat).values(worker="x")
    )
    assert matched.rowcount == 1


def test_the_database_clock_is_naive_utc(empty_app):
    now = db_now(db.session)
    assert now.tzinfo is None
    assert abs(now - utcnow()) < timedelta(seconds=5)
    assert now.microsecond or db_now(db.session).microsecond  # not whole seconds
