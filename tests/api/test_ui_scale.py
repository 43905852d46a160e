"""The page stays cheap at scale (issue 22 item 6): one shared matrix per MATRIX_TTL,
server-side filter and paging, a bounded tasks read in one query."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from app.models import db
from app.ui.sessions import Credentials
from tests.api.fakes import ADMIN
from tests.support.ui_pages import get_json, page_app, page_csrf, sign_in


def authenticator(creds: Credentials) -> str:
    return ADMIN


@pytest.fixture
def ui_app(app_factory) -> Iterator[Flask]:
    with page_app(app_factory, authenticator) as app:
        yield app


@pytest.fixture
def browser(ui_app) -> FlaskClient:
    client = ui_app.test_client()
    assert sign_in(client).status_code == 303
    return client


def count_builds(monkeypatch) -> list[int]:
    from app.ui import views

    built: list[int] = []
    original = views.build_matrix

    def counting(gs, regions):
        built.append(1)
        return original(gs, regions)

    monkeypatch.setattr(views, "build_matrix", counting)
    return built


def test_viewers_share_one_matrix_per_ttl(ui_app, browser, monkeypatch):
    built = count_builds(monkeypatch)
    other = ui_app.test_client()
    sign_in(other)
    first = get_json(browser, "/ui/api/matrix").get_json()
    second = get_json(other, "/ui/api/matrix").get_json()
    assert first == second and len(built) == 1


def test_the_matrix_is_built_again_after_the_ttl(app_factory, monkeypatch):
    app = app_factory(UI_AUTHENTICATOR=authenticator, UI_REVOKER=lambda t: None, MATRIX_TTL=0)
    app.test_client_class = FlaskClient
    client = app.test_client()
    sign_in(client)
    built = count_builds(monkeypatch)
    get_json(client, "/ui/api/matrix")
    get_json(client, "/ui/api/matrix")
    assert len(built) == 2


def test_a_finished_sync_makes_the_matrix_new(ui_app, browser, monkeypatch):
    from tests.support.task_rows import add_task

    built = count_builds(monkeypatch)
    get_json(browser, "/ui/api/matrix")
    add_task(ui_app, "Burgos", "otherhost:4242", age=0, status="synced")
    get_json(browser, "/ui/api/matrix")
    get_json(browser, "/ui/api/matrix")
    assert len(built) == 2


def test_the_matrix_is_filtered_and_paged_on_the_server(browser):
    whole = get_json(browser, "/ui/api/matrix").get_json()
    assert whole["total"] == len(whole["images"]) >= 2
    page = get_json(browser, "/ui/api/matrix?limit=1&offset=1").get_json()
    assert page["total"] == whole["total"] and page["images"] == whole["images"][1:2]
    name = whole["images"][0]["name"]
    found = get_json(browser, f"/ui/api/matrix?name={name[1:].upper()}").get_json()
    assert name in [image["name"] for image in found["images"]]
    assert all(name[1:].lower() in i["name"].lower() for i in found["images"])
    bad = get_json(browser, "/ui/api/matrix?limit=0")
    assert bad.status_code == 400


def test_the_tasks_call_reads_a_bounded_number_in_one_query(ui_app, browser):
    from app.models import Task

    with ui_app.app_context():
        for n in range(30):
            db.session.add(task_row(Task, f"t-{n}", "Burgos", n))
        db.session.commit()
        engine = db.engine
    statements: list[str] = []
    here = threading.get_ident()  # not the lease loop's own reads, in its thread

    def seen(conn, cursor, statement, *args):
        if "FROM task" in statement and threading.get_ident() == here:
            statements.append(statement)

    csrf = page_csrf(browser)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        answer = browser.get("/ui/api/tasks", headers={"X-CSRF-Token": csrf}).get_json()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    burgos = next(r for r in answer["regions"] if r["name"] == "Burgos")
    assert [t["taskId"] for t in burgos["tasks"]] == [f"t-{n}" for n in range(29, 24, -1)]
    assert len(statements) == 1
    assert "row_number" in statements[0].lower()  # bounded in the database, not in Python


def task_row(task_class, task_id: str, region: str, minute: int):
    from datetime import datetime, timedelta

    when = datetime(2026, 1, 1) + timedelta(minutes=minute)
    return task_class(
        task_id=task_id,
        region=region,
        status="synced",
        user_name="alice",
        created=when,
        updated=when,
        message=None,
        images="[]",
        worker="",
        heartbeat=when,
    )
