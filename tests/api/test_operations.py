"""Operations of the service (issue 12 item 3): the paginated task list, retention with
``manage.py tasks prune``, no static route, SQLite WAL and the PostgreSQL pool size."""

from __future__ import annotations

from sqlalchemy import text

from app.models import FAILED, QUEUED, SYNCED, db
from tests.api.fakes import ADMIN
from tests.support.manage_process import manage
from tests.support.task_rows import add_task

AUTH = {"X-Auth-Token": ADMIN}


def make_tasks(app, count: int) -> list[str]:
    """Finished tasks of Burgos, the newest last."""
    return [add_task(app, "Burgos", "w:1:a", age=count - i, status=SYNCED) for i in range(count)]


def test_the_task_list_is_paginated_with_a_next_link(app):
    ids = make_tasks(app, 5)[::-1]  # newest first
    client = app.test_client()
    everything = client.get("/v1/regions/Burgos/tasks", headers=AUTH).get_json()
    assert [t["taskId"] for t in everything["tasks"]] == ids and "next" not in everything
    seen, url = [], "/v1/regions/Burgos/tasks?limit=2"
    while url:
        page = client.get(url, headers=AUTH).get_json()
        assert len(page["tasks"]) <= 2
        seen += [t["taskId"] for t in page["tasks"]]
        url = page.get("next")
    assert seen == ids
    last = client.get(f"/v1/regions/Burgos/tasks?limit=5&marker={ids[0]}", headers=AUTH)
    assert [t["taskId"] for t in last.get_json()["tasks"]] == ids[1:]
    assert "next" not in last.get_json()


def test_bad_page_parameters_are_400(app):
    client = app.test_client()
    for query in ("limit=0", "limit=x", "limit=1001", "limit=-1", "marker=nope"):
        response = client.get(f"/v1/regions/Burgos/tasks?{query}", headers=AUTH)
        assert response.status_code == 400, query
        assert response.get_json()["error"]["message"] == "Bad request"
    caceres = add_task(app, "Caceres", "w:1:a", age=1, status=SYNCED)
    other = client.get(f"/v1/regions/Burgos/tasks?marker={caceres}", headers=AUTH)
    assert other.status_code == 400


def test_there_is_no_static_route(app):
    assert "static" not in {rule.endpoint for rule in app.url_map.iter_rules()}
    response = app.test_client().get("/static/app.js")
    assert response.status_code == 404
    assert response.get_json()["error"]["message"] == "Item not found"


def test_sqlite_runs_in_wal_mode_and_postgres_has_the_pool_size(app_factory, database_url):
    app = app_factory()
    with app.app_context():
        if database_url.startswith("sqlite"):
            assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        else:
            assert db.engine.pool.size() == app.config["SETTINGS"].pool_size == 5


def test_prune_deletes_old_finished_tasks_only(
    app, repo_root, tmp_path, server_files, database_url
):
    day = 24 * 3600
    old_synced = add_task(app, "Burgos", "w:1:a", age=40 * day, status=SYNCED)
    old_failed = add_task(app, "Caceres", "w:1:a", age=31 * day, status=FAILED)
    young = add_task(app, "Burgos", "w:1:a", age=29 * day, status=FAILED)
    queued = add_task(app, "Burgos", "", age=40 * day, status=QUEUED)
    env = {**server_files, "GLANCESYNCAPP_DATABASE_URL": database_url}
    result = manage(repo_root, tmp_path, "tasks", "prune", "--older-than", "30", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Deleted 2 finished task(s) older than 30 day(s)\n"
    with app.app_context():
        left = set(db.session.scalars(text("SELECT task_id FROM task")))
    assert {young, queued} <= left and not {old_synced, old_failed} & left
    bad = manage(repo_root, tmp_path, "tasks", "prune", "--older-than", "-1", env=env)
    assert bad.returncode != 0 and "--older-than" in bad.stderr
