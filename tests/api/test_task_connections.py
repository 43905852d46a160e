"""The task database seen from a long sync and a stopping server (issue 21 item 10).

* a sync thread asks ``run_is_dead`` while it prepares, then syncs for a long time: its
  connection must not stay idle in a transaction meanwhile;
* ``db_now`` is the statement's clock (PostgreSQL ``clock_timestamp()``), not the start of
  the transaction;
* a POST to a stopping server whose region has a queued task answers 503 with
  ``Retry-After`` at once; the queued task stays for another instance.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from app.models import QUEUED, SYNCING, db, db_now
from app.tasks import CREATE_ATTEMPTS, run_is_dead
from app.tasks import creation as creation_module
from tests.api.fakes import ADMIN
from tests.support.task_rows import add_task, stored
from tests.support.waiting import wait_until

pytestmark = pytest.mark.concurrency

AUTH = {"X-Auth-Token": ADMIN}


def backend_state(url: str, pid: int) -> str:
    """The state of one PostgreSQL connection, seen from another one."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = text("SELECT state FROM pg_stat_activity WHERE pid = :pid")
            return connection.execute(query, {"pid": pid}).scalar_one()
    finally:
        engine.dispose()


def test_run_is_dead_leaves_no_transaction_open(app, database_url):
    task_id = add_task(app, "Burgos", "otherhost:1:abc", age=0)
    postgres = database_url.startswith("postgresql")
    with app.app_context():
        if postgres:  # the connection the session holds (its reads below use it too)
            pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert not run_is_dead(f"task:{task_id}")  # syncing, fresh heartbeat: alive
        assert not db.session().in_transaction()
        if postgres:
            assert backend_state(database_url, pid) == "idle"
        assert not run_is_dead("task:unknown")
        assert not db.session().in_transaction()


def test_db_now_is_the_statement_clock(app):
    """Within one transaction the clock still moves (PostgreSQL's now() would not)."""
    with app.app_context():
        first = db_now(db.session)
        assert db.session().in_transaction()
        wait_until(lambda: db_now(db.session) > first, 5, what="the database clock to move")
        assert db.session().in_transaction()  # the same transaction throughout
        db.session.rollback()
        db.session.remove()


def test_a_post_to_a_stopping_server_answers_503_and_leaves_the_queued_task(
    app_factory, monkeypatch
):
    running = app_factory()
    runner = running.extensions["glancesync.tasks"]
    assert runner.stop_syncs(timeout=5)  # nothing runs: it only stops claiming
    queued = add_task(running, "Burgos", "", age=0, status=QUEUED)
    lookups: list[str] = []
    real = creation_module.leases.task_of

    def counted(region: str, status: str):
        lookups.append(status)
        return real(region, status)

    monkeypatch.setattr(creation_module.leases, "task_of", counted)
    answer = running.test_client().post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"  # HEARTBEAT_INTERVAL 0.2 s, rounded up
    assert "stopping" in answer.get_json()["error"]["description"]
    assert lookups.count(SYNCING) == 1 < CREATE_ATTEMPTS  # answered at once, no loop
    assert stored(running, queued).status == QUEUED  # left to another instance
