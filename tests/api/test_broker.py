"""Syncs on Celery workers (issue 15), with the mock backend and the machine's RabbitMQ.

The service under test is an in-process app whose settings name a broker (a vhost of
this run); workers are real ``manage.py worker`` processes on the same database. The
syncs of the CSV mock are instant: the long syncs (kill -9, SIGTERM, cancel, broker cut)
are in tests/integration/test_celery_workers.py against the real Glance servers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection
from sqlalchemy import select, update

from app.broker import TASK_NAME
from app.models import Task, db
from tests.api.fakes import ADMIN
from tests.support.brokers import REPO, WorkerProcess, publish_again, rabbit_vhost
from tests.support.lease_rounds import LeaseRounds
from tests.support.service_app import clean, make_app
from tests.support.service_files import SERVER_CFG, SERVICE_PASSWORD
from tests.support.waiting import wait_until

pytestmark = pytest.mark.concurrency

TOKEN = {"X-Auth-Token": ADMIN}


@pytest.fixture
def broker() -> Iterator[str]:
    with rabbit_vhost() as url:
        yield url


def environ_for(tmp_path: Path, core_files, database_url: str, celery: str) -> dict[str, str]:
    settings = tmp_path / "fiware-glancesync.cfg"
    settings.write_text(SERVER_CFG.format(password=SERVICE_PASSWORD) + "\n[celery]\n" + celery)
    logging_cfg = tmp_path / "fiware-glancesync-logging.cfg"
    logging_cfg.write_text((REPO / "fiware-glancesync-logging.cfg").read_text())
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("GLANCESYNC")},
        "GLANCESYNC_SETTINGS_FILE": str(settings),
        "GLANCESYNC_LOGGING_SETTINGS_FILE": str(logging_cfg),
        "GLANCESYNC_CONFIG": core_files["config"],
        "GLANCESYNC_USE_MOCK": core_files["backups"],
        "GLANCESYNCAPP_DATABASE_URL": database_url,
    }


@pytest.fixture
def service(tmp_path, core_files, database_url, broker, monkeypatch) -> Iterator:
    """``service(celery_lines)``: (app, environ of its workers); all stopped after."""
    monkeypatch.setenv("GLANCESYNC_USE_MOCK", core_files["backups"])
    apps, workers = [], []

    def make(celery: str = "") -> tuple:
        environ = environ_for(tmp_path, core_files, database_url, celery)
        environ["GLANCESYNCAPP_BROKER_URL"] = broker
        apps.append(make_app(database_url, environ, core_files, HEARTBEAT_INTERVAL=0.2))
        return apps[-1], environ

    def worker(environ: dict[str, str], *args: str) -> WorkerProcess:
        workers.append(WorkerProcess(environ, tmp_path / "workers", *args))
        wait_until(workers[-1].ready, 60)
        return workers[-1]

    make.worker = worker
    yield make
    for process in workers:
        process.stop()
    for app in apps:
        app.extensions["glancesync.tasks"].shutdown(wait=True)
    for app in apps:
        clean(app)


def messages(broker: str, queue: str) -> list[tuple[str, list]]:
    """(task name, args) of the messages waiting in ``queue`` (consumed)."""
    found = []
    with Connection(broker) as conn, conn.SimpleQueue(queue) as simple:
        while True:
            try:
                message = simple.get(timeout=1)
            except simple.Empty:
                return found
            found.append((message.headers["task"], message.payload[0]))
            message.ack()


def task(client, location: str) -> dict:
    return client.get(location, headers=TOKEN).get_json()


def worker_pid(app, task_id: str) -> int:
    """The pid in the task's lease holder ``host:pid:nonce`` (not shown by the API)."""
    with app.app_context():
        row = db.session.scalars(select(Task).where(Task.task_id == task_id)).one()
        db.session.remove()
    return int(row.worker.split(":")[1])


def test_a_post_with_a_broker_publishes_the_task_and_leaves_it_queued(service, broker, monkeypatch):
    app, _ = service("ROUTES = other:=west\n")
    rounds = LeaseRounds(app.extensions["glancesync.tasks"], monkeypatch)
    client = app.test_client()
    burgos = client.post("/v1/regions/Burgos/tasks", headers=TOKEN)
    madrid = client.post("/v1/regions/other:Madrid/tasks", headers=TOKEN)
    assert burgos.status_code == madrid.status_code == 202
    rounds.wait(3)  # two whole lease rounds: no thread of the service claims them
    ids = [task(client, r.headers["Location"])["taskId"] for r in (burgos, madrid)]
    assert [task(client, r.headers["Location"])["status"] for r in (burgos, madrid)] == [
        "queued",
        "queued",
    ]
    assert messages(broker, "glancesync") == [(TASK_NAME, [ids[0], "Burgos"])]
    assert messages(broker, "west") == [(TASK_NAME, [ids[1], "other:Madrid"])]
    # a second POST of a region with a queued task answers with it, no second message
    again = client.post("/v1/regions/Burgos/tasks", headers=TOKEN)
    assert again.get_json()["taskId"] == ids[0]
    assert messages(broker, "glancesync") == []


def test_an_unreachable_broker_is_a_503_and_stores_no_task(
    tmp_path, core_files, database_url, monkeypatch
):
    monkeypatch.setenv("GLANCESYNC_USE_MOCK", core_files["backups"])
    environ = environ_for(tmp_path, core_files, database_url, "BROKER_URL = amqp://127.0.0.1:9//\n")
    app = make_app(database_url, environ, core_files)
    try:
        client = app.test_client()
        answer = client.post("/v1/regions/Burgos/tasks", headers=TOKEN)
        assert answer.status_code == 503
        assert answer.get_json()["error"]["description"] == "The task broker cannot be reached"
        assert client.get("/v1/regions/Burgos/tasks", headers=TOKEN).get_json()["tasks"] == []
    finally:
        app.extensions["glancesync.tasks"].shutdown(wait=True)


def test_a_worker_syncs_the_task_and_a_duplicate_message_syncs_nothing(service, broker):
    app, environ = service()
    client = app.test_client()
    worker = service.worker(environ)
    location = client.post("/v1/regions/Burgos/tasks", headers=TOKEN).headers["Location"]
    wait_until(lambda: task(client, location)["status"] == "synced", 30)
    first = task(client, location)
    assert worker_pid(app, first["taskId"]) == worker.pid  # the worker ran it
    publish_again(broker, first["taskId"], "Burgos", "glancesync")
    wait_until(lambda: f"Message of task {first['taskId']} dropped" in worker.text(), 30)
    assert task(client, location) == first  # not synced a second time
    assert len(client.get("/v1/regions/Burgos/tasks", headers=TOKEN).get_json()["tasks"]) == 1


def test_a_routed_region_runs_only_on_its_queues_worker(service):
    app, environ = service("ROUTES = Burgos=east\n")
    client = app.test_client()
    default = service.worker(environ)
    east = service.worker(environ, "-Q", "east")
    owners = {}
    for region in ("Burgos", "Caceres", "Burgos"):
        location = client.post(f"/v1/regions/{region}/tasks", headers=TOKEN).headers["Location"]
        wait_until(lambda loc=location: task(client, loc)["status"] in ("synced", "failed"), 30)
        task_id = task(client, location)["taskId"]
        owners.setdefault(region, set()).add(worker_pid(app, task_id))
    assert owners == {"Burgos": {east.pid}, "Caceres": {default.pid}}


def test_worker_without_a_broker_exits_with_a_clear_message(tmp_path, core_files, database_url):
    environ = environ_for(tmp_path, core_files, database_url, "")
    import subprocess

    done = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "worker"],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "manage.py worker needs [celery] BROKER_URL" in done.stderr


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ("Burgoss=east", "ROUTES names unknown region 'Burgoss'"),
        ("nowhere:=east", "ROUTES names unknown target 'nowhere'"),
        ("Burgos", "entry 'Burgos' is not <region>=<queue>"),
    ],
)
def test_a_bad_route_stops_the_worker_at_start(
    tmp_path, core_files, database_url, broker, routes, message
):
    environ = environ_for(tmp_path, core_files, database_url, f"ROUTES = {routes}\n")
    environ["GLANCESYNCAPP_BROKER_URL"] = broker
    import subprocess

    done = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "worker"],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stderr


def test_a_follow_up_waits_on_the_queue_until_the_running_sync_ends(service):
    """A task queued behind a running sync of its region (an image changed meanwhile):
    the worker republishes its message until the region is free, then syncs it."""
    from app.models import SYNCING, utcnow
    from app.tasks import runner_of, start_sync
    from app.workers import new_worker

    app, environ = service()
    worker = service.worker(environ)
    running, now = "running-elsewhere", utcnow()
    runner = runner_of(app)
    runner.reserve(running, "Burgos")  # this process holds it: the sweep spares it
    holder = new_worker()
    with app.app_context():
        db.session.add(
            Task(
                task_id=running,
                region="Burgos",
                status=SYNCING,
                user_name="old",
                created=now,
                updated=now,
                images="[]",
                worker=holder.name,
                worker_scope=holder.scope,
                heartbeat=now,
            )
        )
        db.session.commit()
        follow_up, created = start_sync("Burgos", "notifications", follow_up=True)
        assert created and follow_up.status == "queued"
        follow_id = follow_up.task_id
        db.session.remove()
    client = app.test_client()
    location = f"/v1/regions/Burgos/tasks/{follow_id}"
    wait_until(lambda: worker.text().count("Retry in") >= 2, 30)  # republished, not dropped
    assert task(client, location)["status"] == "queued"
    with app.app_context():
        db.session.execute(
            update(Task).where(Task.task_id == running).values(status="synced", updated=utcnow())
        )
        db.session.commit()
        db.session.remove()
    runner.release(running)
    wait_until(lambda: task(client, location)["status"] == "synced", 30)
    assert worker_pid(app, follow_id) == worker.pid
