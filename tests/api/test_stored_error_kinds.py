"""The kind of an error travels from its raise site to the metric through the task's
result (issue 20 item 3): a finished task's errors are counted by the ``kind`` the backend
gave them, never by their English text, and the REST output is unchanged (no kind in it).
"""

from __future__ import annotations

from typing import Any

import pytest

from app.metrics import metrics
from app.regions import core
from glancesync.errors import BackendError, ErrorKind
from glancesync.image import Image
from tests.api.fakes import ADMIN
from tests.support.service_app import wait_for_task
from tests.support.waiting import wait_until

AUTH = {"X-Auth-Token": ADMIN}


class Failing:
    """A target's backend whose uploads (or first listing of Burgos) fail with ``error``,
    its kind chosen against its text; everything else is the mock's."""

    def __init__(self, inner, error: BackendError, operation: str) -> None:
        self.inner, self.error, self.operation = inner, error, operation

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upload(self, region: str, master: Image, *args: Any, **kwargs: Any) -> Image:
        if self.operation == "upload":
            raise self.error
        return self.inner.upload(region, master, *args, **kwargs)

    def list_images(self, region: str) -> list[Image]:
        if self.operation == "list" and region == "Burgos":
            self.operation = "listed"  # once: the status read after the sync succeeds
            raise self.error
        return self.inner.list_images(region)


def failing(app, error: BackendError, operation: str) -> None:
    with app.app_context():
        gs = core().glancesync()
        gs.backends["master"] = Failing(gs.backends["master"], error, operation)


def counted(region: str, kind: ErrorKind) -> float:
    return metrics().glance_errors.labels(region, kind.value)._value.get()


def kinds_counted(region: str) -> dict[ErrorKind, float]:
    return {kind: counted(region, kind) for kind in ErrorKind}


def ended(app, client, location: str) -> dict:
    """The task's body once its runner let it go: its metrics are recorded after its
    final write, before that."""
    task = wait_for_task(client, location, AUTH)
    runner = app.extensions["glancesync.tasks"]
    wait_until(lambda: not runner.owned(), 10, what="the task to leave its runner")
    return task


def sync(app, client, region: str = "Burgos") -> dict:
    answer = client.post(f"/v1/regions/{region}/tasks", headers=AUTH)
    assert answer.status_code == 202, answer.get_json()
    return ended(app, client, answer.headers["Location"])


def added(before: dict[ErrorKind, float], region: str) -> dict[str, float]:
    after = kinds_counted(region)
    return {
        kind.value: after[kind] - before[kind] for kind in ErrorKind if after[kind] != before[kind]
    }


def test_an_image_failure_is_counted_by_its_kind_not_its_text(app, client):
    message = "Burgos: Upload of img02 Failed. Cause: read timed out"
    failing(app, BackendError(message, ErrorKind.NOT_FOUND), "upload")
    before = kinds_counted("Burgos")
    task = sync(app, client)
    assert task["status"] == "failed", task
    assert task["message"] == message
    img02 = next(image for image in task["images"] if image["name"] == "img02")
    assert img02 == {
        "name": "img02",
        "statusBefore": "pending_upload",
        "action": "upload",
        "result": "failed",
        "error": message,
    }
    assert added(before, "Burgos") == {"not_found": 1}


def test_a_region_failure_gives_its_kind_to_the_metric(app, client):
    message = "Burgos: Error retrieving image list. Cause: 403 connection timed out"
    failing(app, BackendError(message, ErrorKind.QUOTA), "list")
    before = kinds_counted("Burgos")
    task = sync(app, client)
    assert (task["status"], task["message"], task["images"]) == ("failed", message, [])
    assert added(before, "Burgos") == {"quota": 1}


@pytest.mark.parametrize("kind", [ErrorKind.CONFLICT, ErrorKind.UNAVAILABLE])
def test_a_group_members_failure_gives_its_kind_to_the_metric(app, client, kind):
    message = "Burgos: Upload of img02 Failed. Cause: checksum 404 refused"
    failing(app, BackendError(message, kind), "upload")
    before = kinds_counted("Burgos")
    answer = client.post("/v1/tasks", json={"regions": ["Burgos"]}, headers=AUTH)
    assert answer.status_code == 202, answer.get_json()
    (task,) = answer.get_json()["tasks"]
    location = f"/v1/regions/{task['region']}/tasks/{task['taskId']}"
    assert ended(app, client, location)["status"] == "failed"
    assert added(before, "Burgos") == {kind.value: 1}
