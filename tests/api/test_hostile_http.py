"""Crafted requests: path traversal, SQL metacharacters, unicode, oversized values.

Each must end in a 4xx JSON error of docs/reference.md 10.1 (never a 500, never a stack trace),
and must leave the database as it was. The test client also checks every answer against
app/openapi.json and for leaked secrets (tests/support/service_app.py).
"""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_core.templating.responses.exceptions import ResponseNotFound
from sqlalchemy import func, select

from app.models import Task, db
from app.tasks import TaskRunner
from tests.api.fakes import ADMIN
from tests.support.service_app import ERROR_SCHEMA, check_openapi

AUTH = {"X-Auth-Token": ADMIN}
KB10 = "A" * 10_240

HOSTILE_NAMES = [
    "..%2F..%2Fetc%2Fpasswd",
    "..%2F",
    "%2E%2E%2F%2E%2E%2Fetc",
    "..%5C..%5Cwindows",
    "Burgos%2F..%2FBurgos",
    "Burgos'%20OR%20'1'%3D'1",
    "Burgos%3B%20DROP%20TABLE%20task%3B--",
    "%22%3B%20DELETE%20FROM%20task%3B%20--",
    "Burgos%25",
    "Burgos_",
    "%00",
    "Burgos%00",
    "Burg%C3%B6s",
    "%E5%8C%BA%E5%9F%9F",
    "%F0%9F%92%A5",
    "%FF%FE",
    "master%3Amaster%3ABurgos",
    "other%3A",
    "%3A",
    "%20Burgos",
    KB10,
]
ROUTES = [
    ("get", "/v1/regions/{r}/images"),
    ("post", "/v1/regions/{r}/tasks"),
    ("get", "/v1/regions/{r}/tasks"),
    ("get", "/v1/regions/{r}/tasks/{t}"),
    ("delete", "/v1/regions/{r}/tasks/{t}"),
    ("get", "/regions/{r}"),
    ("post", "/regions/{r}"),
    ("get", "/regions/{r}/tasks/{t}"),
    ("delete", "/regions/{r}/tasks/{t}"),
]
HOSTILE_TASK_IDS = [
    "..%2F..%2Fetc%2Fpasswd",
    "'%20OR%20'1'%3D'1",
    "x'%3B%20DROP%20TABLE%20task%3B--",
    "%25",
    "%E2%80%AE",
    KB10,
]
HOSTILE_TOKENS = [
    KB10,
    "A" * 100_000,
    "' OR '1'='1",
    "admin-token' --",
    "admin\t-token",  # surrounding blanks are trimmed (as HTTP does), inner ones are not
    "*",
    "%",
    "../../etc/passwd",
    "\u00e9\u00e8",
    ADMIN.upper(),
    ADMIN + "x",
]


class HostileClient(FlaskClient):
    """The suite's OpenAPI check, except for one artefact of openapi-core: it matches
    ``/v1/regions/..//images`` to ``{region}`` = ``../`` while the service (rightly) finds
    no route for a region holding a ``/`` and answers the generic JSON 404."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        try:
            check_openapi(response)
        except ResponseNotFound:
            segments = response.request.path.split("/")[1:]
            assert response.status_code == 404 and ("" in segments or ".." in segments)
            ERROR_SCHEMA.validate(json.loads(response.get_data()))
        return response


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    app.test_client_class = HostileClient
    return app.test_client()


@pytest.fixture
def hold_syncs(monkeypatch: pytest.MonkeyPatch) -> None:
    """POSTs that get through create a task but start no background sync."""
    monkeypatch.setattr(TaskRunner, "launch", lambda self, task_id, region: None)


def task_count(app: Flask) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Task))
        db.session.remove()
        return count


def assert_json_4xx(response) -> None:
    """A client error with the body of 10.1 and nothing that looks like a traceback."""
    assert 400 <= response.status_code < 500, (response.request.path[:80], response.status_code)
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == response.status_code
    assert b"Traceback" not in response.data and b"sqlalchemy" not in response.data.lower()


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: n[:24])
def test_hostile_region_names_are_refused(client: FlaskClient, app: Flask, hold_syncs, name):
    for method, template in ROUTES:
        path = template.format(r=name, t="00000000-0000-0000-0000-000000000000")
        assert_json_4xx(getattr(client, method)(path, headers=AUTH))
    assert task_count(app) == 0


@pytest.mark.parametrize("task_id", HOSTILE_TASK_IDS, ids=lambda n: n[:24])
def test_hostile_task_ids_are_not_found(client: FlaskClient, app: Flask, hold_syncs, task_id):
    created = client.post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert created.status_code == 202
    for method, template in ROUTES:
        if "{t}" in template:
            response = getattr(client, method)(template.format(r="Burgos", t=task_id), headers=AUTH)
            assert_json_4xx(response)
            assert response.status_code == 404
    assert task_count(app) == 1  # the DELETEs removed nothing


@pytest.mark.parametrize("token", HOSTILE_TOKENS, ids=lambda n: repr(n)[:24])
def test_hostile_tokens_are_401(client: FlaskClient, app: Flask, hold_syncs, token):
    for method, template in ROUTES:
        response = getattr(client, method)(
            template.format(r="Burgos", t="x"), headers={"X-Auth-Token": token}
        )
        assert_json_4xx(response)
        assert response.status_code == 401
    assert task_count(app) == 0


def test_a_rejected_token_costs_one_keystone_call(client: FlaskClient, app: Flask):
    """Refusals are remembered briefly (issue 22), as digests in a bounded LRU
    (tests/api/test_edges.py): junk costs Keystone one call and cannot grow the process."""
    validator = app.config["TOKEN_VALIDATOR"]
    for _ in range(3):
        client.get("/v1/regions/Burgos/tasks", headers={"X-Auth-Token": KB10})
    assert validator.calls[KB10] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Auth-Token": ADMIN, "Content-Type": "application/json"},
        {"X-Auth-Token": ADMIN, "Content-Type": "text/html; charset=\u00ff"},
        {"X-Auth-Token": ADMIN, "Content-Type": "multipart/form-data; boundary="},
        {"X-Auth-Token": ADMIN, "Content-Type": "x" * 10_240},
        {"X-Auth-Token": ADMIN, "Accept": "text/html"},
        {"X-Auth-Token": ADMIN, "X-Forwarded-For": "' OR 1=1 --", "Host": "evil.example"},
        {"X-Auth-Token": ADMIN, "X-Junk": KB10},
    ],
    ids=range(7),
)
@pytest.mark.parametrize("body", [b"", b"{not json", b"\xff\xfe\x00", b"[" * 5000, KB10.encode()])
def test_post_ignores_a_malformed_body_and_headers(
    client: FlaskClient, app: Flask, hold_syncs, headers, body
):
    """The POST takes no body: junk in it or in the headers neither breaks nor changes it."""
    response = client.post("/v1/regions/Burgos/tasks", headers=headers, data=body)
    assert response.status_code in (200, 202)
    assert response.get_json()["region"] == "Burgos"
    assert task_count(app) == 1


@pytest.mark.parametrize(
    "query",
    ["image=' OR '1'='1", "image=%00", "image=" + KB10, "image=..%2F..", "image=a&image=b"],
    ids=range(5),
)
def test_hostile_image_filter_matches_nothing(client: FlaskClient, query):
    response = client.get(f"/v1/regions/Burgos/images?{query}", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {"images": []}


@pytest.mark.parametrize("method", ["put", "patch", "options", "trace"])
def test_unexpected_methods_are_refused_as_json(client: FlaskClient, method):
    response = client.open("/v1/regions/Burgos/tasks", method=method.upper(), headers=AUTH)
    assert_json_4xx(response)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}


def test_a_lost_database_is_a_json_503(client: FlaskClient, monkeypatch):
    """A restarting PostgreSQL (tests/integration/test_faults.py) is an outage, not a bug."""
    from sqlalchemy.exc import OperationalError

    import app.routes

    def broken(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(app.routes, "find_task", broken)
    response = client.get("/v1/regions/Burgos/tasks/x", headers=AUTH)
    assert response.status_code == 503
    assert response.get_json()["error"]["description"] == "The task database cannot be reached"
    assert b"server closed" not in response.data
