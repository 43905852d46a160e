"""Routes, status codes and bodies of reference 10.1 and 10.4-10.7 (every answer is also
checked against app/openapi.json by the test client)."""

from __future__ import annotations

import json

import pytest

from app.routes import OPENAPI_FILE
from app.tasks import TaskRunner
from tests.api.fakes import (
    ADMIN,
    EXPIRED,
    KEYSTONE_DOWN,
    MEMBER,
    NO_ROLE,
    REJECTED_CREDENTIALS,
)
from tests.support.service_app import wait_for_task

AUTH = {"X-Auth-Token": ADMIN}
AUTH_MESSAGE = "The request you have made requires authentication."


def error(response) -> dict:
    return response.get_json()["error"]


@pytest.fixture
def hold_syncs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks stay ``syncing``: the background sync is not started (its task stays owned)."""
    monkeypatch.setattr(TaskRunner, "launch", lambda self, task_id, region: None)


# -- public routes -------------------------------------------------------------------------
def test_info_needs_no_token_and_ignores_an_invalid_one(client):
    for headers in ({}, {"X-Auth-Token": "garbage"}):
        response = client.get("/", headers=headers)
        assert response.status_code == 200
        body = response.get_json()
        assert list(body) == ["id", "owner", "status", "version", "updated", "runningfrom", "href"]
        assert body["id"] == "v2.0.0" and body["version"] == "2.0.0"
        assert body["owner"] == "Test Owner"
        assert body["status"] == "SUPPORTED"
        assert body["href"] == "http://docs.glancesync.apiary.io/#"
        assert body["runningfrom"].endswith("Z") and "T" in body["runningfrom"]


def test_post_info_is_bad_method(client):
    response = client.post("/")
    assert response.status_code == 405
    assert error(response) == {"message": "Bad method", "code": 405}
    assert "GET" in response.headers["Allow"]


def test_openapi_document_is_served_without_token(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == json.loads(OPENAPI_FILE.read_text())
    assert response.get_json()["openapi"].startswith("3.")


# -- routing before authentication ---------------------------------------------------------
@pytest.mark.parametrize("path", ["/nope", "/v1/regions/Burgos/nope", "/v1", "/regions"])
def test_unknown_path_is_404_before_authentication(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert error(response) == {"message": "Item not found", "code": 404}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/v1/regions/Burgos/tasks"),
        ("delete", "/v1/regions/Burgos/images"),
        ("patch", "/regions/Burgos"),
        ("post", "/v1/regions/Burgos/tasks/123"),
        ("post", "/v1/openapi.json"),
    ],
)
def test_wrong_method_is_405_before_authentication(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert error(response) == {"message": "Bad method", "code": 405}


# -- authentication ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers", [{}, {"X-Auth-Token": ""}, {"X-Auth-Token": "unknown"}, {"X-Auth-Token": EXPIRED}]
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/regions/Burgos/images"),
        ("post", "/v1/regions/Burgos/tasks"),
        ("get", "/v1/regions/Burgos/tasks"),
        ("get", "/v1/regions/Burgos/tasks/x"),
        ("delete", "/v1/regions/Burgos/tasks/x"),
        ("get", "/regions/Burgos"),
        ("post", "/regions/Burgos"),
        ("get", "/regions/Burgos/tasks/x"),
        ("delete", "/regions/Burgos/tasks/x"),
    ],
)
def test_missing_invalid_or_expired_token_is_401(client, headers, method, path):
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == 401
    assert error(response) == {"message": AUTH_MESSAGE, "code": 401}


def test_unknown_region_without_token_is_401_not_410(client):
    assert client.get("/v1/regions/Nowhere/images").status_code == 401


def test_token_without_required_role_is_403(client):
    response = client.get("/v1/regions/Burgos/images", headers={"X-Auth-Token": NO_ROLE})
    assert response.status_code == 403
    body = error(response)
    assert body["message"] == "Forbidden" and body["code"] == 403
    assert "admin" in body["description"]


def test_403_comes_before_410(client):
    response = client.get("/v1/regions/Nowhere/images", headers={"X-Auth-Token": NO_ROLE})
    assert response.status_code == 403


@pytest.mark.parametrize("token", [KEYSTONE_DOWN, REJECTED_CREDENTIALS])
def test_keystone_unavailable_is_503(client, token):
    response = client.get("/v1/regions/Burgos/images", headers={"X-Auth-Token": token})
    assert response.status_code == 503
    body = error(response)
    assert body["message"] == "Service unavailable" and body["code"] == 503
    assert "Keystone" in body["description"]


def test_required_roles_come_from_the_settings(app_factory):
    app = app_factory(REQUIRED_ROLES=("member",))
    client = app.test_client()
    ok = client.get("/v1/regions/Burgos/images", headers={"X-Auth-Token": MEMBER})
    assert ok.status_code == 200


# -- regions -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "region", ["Nowhere", "other:Nowhere", "nope:Madrid", "Madrid", "master:Madrid"]
)
def test_unknown_region_is_410(client, region):
    for method, path in [
        ("get", f"/v1/regions/{region}/images"),
        ("post", f"/v1/regions/{region}/tasks"),
        ("get", f"/v1/regions/{region}/tasks"),
        ("get", f"/v1/regions/{region}/tasks/x"),
        ("delete", f"/v1/regions/{region}/tasks/x"),
        ("get", f"/regions/{region}"),
        ("post", f"/regions/{region}"),
        ("get", f"/regions/{region}/tasks/x"),
        ("delete", f"/regions/{region}/tasks/x"),
    ]:
        response = getattr(client, method)(path, headers=AUTH)
        assert response.status_code == 410, (method, path)
        assert error(response) == {"message": "Bad region", "code": 410}


# -- images --------------------------------------------------------------------------------
BURGOS = [
    {"id": "101", "name": "img01", "status": "ok", "message": None},
    {
        "id": None,
        "name": "img02",
        "status": "pending_upload",
        "message": "Not in the region; it will be uploaded",
    },
    {
        "id": "103",
        "name": "img03",
        "status": "error_checksum",
        "message": "Region checksum zz3 differs from the master; add it to dontupdate, replace "
        "or rename",
    },
]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/regions/Burgos/images",
        "/v1/regions/master:Burgos/images",
        "/regions/Burgos",
        "/regions/master:Burgos",
    ],
)
def test_image_statuses(client, path):
    response = client.get(path, headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {"images": BURGOS}


def test_image_filter(client):
    one = client.get("/v1/regions/Burgos/images?image=img02", headers=AUTH).get_json()
    assert one == {"images": [BURGOS[1]]}
    none = client.get("/regions/Burgos?image=img99", headers=AUTH).get_json()
    assert none == {"images": []}


def test_images_of_another_target(client):
    body = client.get("/v1/regions/other:Madrid/images", headers=AUTH).get_json()
    assert [(i["name"], i["status"]) for i in body["images"]] == [
        ("img01", "ok"),
        ("img02", "pending_upload"),
        ("img03", "pending_upload"),
    ]


def test_unreachable_region_is_503(client):
    response = client.get("/v1/regions/Caceres/images", headers=AUTH)
    assert response.status_code == 503
    body = error(response)
    assert body["message"] == "Service unavailable"
    # The component, never the cause (it may name hosts): that goes to the log (issue 22).
    assert body["description"] == "The Glance of region Caceres cannot be reached or failed"


def test_unhandled_exception_is_500_without_details(client, app, monkeypatch):
    gs = app.extensions["glancesync.core"].glancesync()

    def explode(region):
        raise RuntimeError("boom with secret details")

    monkeypatch.setattr(gs, "image_report", explode)
    response = client.get("/v1/regions/Burgos/images", headers=AUTH)
    assert response.status_code == 500
    assert response.get_json() == {"error": {"message": "Unhandled exception", "code": 500}}
    assert b"boom" not in response.data and b"Traceback" not in response.data


# -- tasks ---------------------------------------------------------------------------------
def test_post_starts_a_sync_and_the_task_ends_synced(client):
    response = client.post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert response.status_code == 202
    task = response.get_json()
    assert response.headers["Location"] == f"/v1/regions/Burgos/tasks/{task['taskId']}"
    assert task["region"] == "Burgos" and task["user"] == "alice"
    assert task["status"] == "syncing" and task["message"] is None and task["images"] == []
    done = wait_for_task(client, response.headers["Location"], AUTH)
    assert done["status"] == "synced"
    assert done["message"] == "Burgos:   Total uploaded to region: 20 (MB) "
    assert done["images"] == [
        {"name": "img01", "statusBefore": "ok", "action": "none", "result": "ok", "error": None},
        {
            "name": "img02",
            "statusBefore": "pending_upload",
            "action": "upload",
            "result": "done",
            "error": None,
        },
        {
            "name": "img03",
            "statusBefore": "error_checksum",
            "action": "none",
            "result": "error",
            "error": None,
        },
    ]
    after = client.get("/v1/regions/Burgos/images?image=img02", headers=AUTH).get_json()
    assert after["images"][0]["status"] == "ok"


def test_master_prefix_and_other_target_tasks(client):
    response = client.post("/v1/regions/master:Burgos/tasks", headers=AUTH)
    assert response.get_json()["region"] == "Burgos"
    assert response.headers["Location"].startswith("/v1/regions/Burgos/tasks/")
    other = client.post("/v1/regions/other:Madrid/tasks", headers=AUTH)
    assert other.status_code == 202
    assert other.headers["Location"].startswith("/v1/regions/other:Madrid/tasks/")
    done = wait_for_task(client, other.headers["Location"], AUTH)
    assert done["status"] == "synced" and done["region"] == "other:Madrid"


def test_failed_sync_ends_failed_with_the_error(client):
    response = client.post("/v1/regions/Caceres/tasks", headers=AUTH)
    done = wait_for_task(client, response.headers["Location"], AUTH)
    assert done["status"] == "failed"
    assert done["message"] == "Caceres: Error retrieving image list. Cause: injected fault"


def test_post_while_syncing_returns_the_running_task(client, hold_syncs):
    first = client.post("/v1/regions/Burgos/tasks", headers=AUTH)
    second = client.post("/v1/regions/Burgos/tasks", headers={"X-Auth-Token": ADMIN})
    compat = client.post("/regions/Burgos", headers=AUTH)
    assert first.status_code == 202 and second.status_code == 200
    assert second.get_json() == first.get_json()
    assert second.headers["Location"] == first.headers["Location"]
    assert compat.status_code == 200
    assert compat.get_json() == {"taskId": first.get_json()["taskId"], "status": "syncing"}


def test_a_finished_task_does_not_block_a_new_post(client):
    first = client.post("/v1/regions/Burgos/tasks", headers=AUTH)
    wait_for_task(client, first.headers["Location"], AUTH)
    second = client.post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert second.status_code == 202
    assert second.get_json()["taskId"] != first.get_json()["taskId"]


def test_task_list_is_newest_first_without_images(client):
    ids = []
    for _ in range(3):
        response = client.post("/v1/regions/Burgos/tasks", headers=AUTH)
        ids.append(response.get_json()["taskId"])
        wait_for_task(client, response.headers["Location"], AUTH)
    client.post("/v1/regions/other:Madrid/tasks", headers=AUTH)
    body = client.get("/v1/regions/Burgos/tasks", headers=AUTH).get_json()
    assert [t["taskId"] for t in body["tasks"]] == ids[::-1]
    assert all("images" not in t for t in body["tasks"])
    empty = client.get("/v1/regions/Caceres/tasks", headers=AUTH).get_json()
    assert empty == {"tasks": []}


def test_get_task_and_404s(client, hold_syncs):
    task = client.post("/v1/regions/Burgos/tasks", headers=AUTH).get_json()
    task_id = task["taskId"]
    assert client.get(f"/v1/regions/Burgos/tasks/{task_id}", headers=AUTH).get_json() == task
    for path in [
        f"/v1/regions/Burgos/tasks/{task_id}x",
        f"/v1/regions/Caceres/tasks/{task_id}",
        f"/regions/Caceres/tasks/{task_id}",
    ]:
        response = client.get(path, headers=AUTH)
        assert response.status_code == 404, path
        assert error(response) == {"message": "Item not found", "code": 404}
    assert client.get(f"/v1/regions/Nowhere/tasks/{task_id}", headers=AUTH).status_code == 410


def test_delete_syncing_task_is_409_then_finished_task_is_deleted(client, app, hold_syncs):
    task = client.post("/v1/regions/Burgos/tasks", headers=AUTH).get_json()
    path = f"/v1/regions/Burgos/tasks/{task['taskId']}"
    for url in (path, f"/regions/Burgos/tasks/{task['taskId']}"):
        response = client.delete(url, headers=AUTH)
        assert response.status_code == 409
        assert error(response) == {
            "message": "Task status is syncing. Unable to delete it.",
            "code": 409,
        }
    with app.app_context():
        from app.leases import finish
        from app.tasks import runner

        assert finish(task["taskId"], runner().worker.name, "synced", "done", [], None)
    assert (
        client.delete(f"/v1/regions/Caceres/tasks/{task['taskId']}", headers=AUTH).status_code
        == 404
    )
    response = client.delete(path, headers=AUTH)
    assert response.status_code == 204 and response.data == b""
    assert client.get(path, headers=AUTH).status_code == 404
    assert client.delete(path, headers=AUTH).status_code == 404


def test_compat_routes(client):
    response = client.post("/regions/Burgos", headers=AUTH)
    assert response.status_code == 200
    short = response.get_json()
    assert set(short) == {"taskId", "status"} and short["status"] == "syncing"
    full = wait_for_task(client, f"/v1/regions/Burgos/tasks/{short['taskId']}", AUTH)
    compat = client.get(f"/regions/Burgos/tasks/{short['taskId']}", headers=AUTH)
    assert compat.get_json() == {"taskId": short["taskId"], "status": full["status"]}
    deleted = client.delete(f"/regions/Burgos/tasks/{short['taskId']}", headers=AUTH)
    assert deleted.status_code == 200 and deleted.data == b""
    gone = client.get(f"/regions/Burgos/tasks/{short['taskId']}", headers=AUTH)
    assert gone.status_code == 404
