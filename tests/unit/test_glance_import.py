"""The real backend's server-side copy (glance_import) against a scripted Glance client."""

from __future__ import annotations

import json

import pytest

from glancesync.backends.glance_import import (
    ImportTransaction,
    advertises,
    import_request,
    task_failure,
)
from glancesync.backends.retry import RetryPolicy
from glancesync.errors import BackendError, Cancelled, ErrorKind
from glancesync.image import Image

MASTER = Image(
    name="cirros",
    id="m-1",
    checksum="md5",
    size=10,
    os_hash_algo="sha512",
    os_hash_value="sha",
    disk_format="qcow2",
    container_format="bare",
)


class FakeClient:
    """images.create/get/delete and http_client.post/get/patch; ``states`` are the image
    records the successive ``images.get`` return (the last one repeats)."""

    def __init__(self, states, tasks=None):
        self.states, self.tasks = list(states), tasks or {"tasks": []}
        self.created, self.deleted, self.posted, self.patched = [], [], [], []
        self.images, self.http_client = self, self

    def create(self, **fields):
        self.created.append(fields)
        return {"id": "new"}

    def get(self, image_id_or_url):
        if str(image_id_or_url).endswith("/tasks"):
            return None, self.tasks
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def delete(self, image_id):
        self.deleted.append(image_id)

    def post(self, url, data):
        self.posted.append((url, data))

    def patch(self, url, headers, data):
        self.patched.append(json.loads(data))
        return None, {**self.states[-1], "id": "new", "status": "active"}


ACTIVE = {"id": "new", "status": "active", "checksum": "md5", "os_hash_algo": "sha512",
          "os_hash_value": "sha", "name": "cirros", "visibility": "public",
          "glancesync_upload": "run-1", "hw_disk_bus": "virtio"}  # fmt: skip


def transaction(client, progress=None, timeout=60.0, clock=None):
    ticks = iter(range(0, 100000, 10))
    return ImportTransaction(
        "Trento",
        MASTER,
        True,
        {"type": "base", "glancesync_upload": "run-1"},
        progress,
        client=client,
        reason=str,
        request=import_request("Spain2", MASTER.id, "public"),
        timeout=timeout,
        retry=RetryPolicy(attempts=2, wait=0),
        clock=clock or (lambda: next(ticks)),
        sleep=lambda s: None,
    )


def test_request_body_is_glance_download_from_the_master_region():
    assert import_request("Spain2", "m-1", "internal") == {
        "method": {
            "name": "glance-download",
            "glance_image_id": "m-1",
            "glance_region": "Spain2",
            "glance_service_interface": "internal",
        }
    }


def test_advertised_methods():
    assert advertises({"import-methods": {"value": ["web-download", "glance-download"]}})
    assert not advertises({"import-methods": {"value": ["glance-direct"]}})
    assert not advertises({})


def test_latest_task_failure_message():
    tasks = {
        "tasks": [
            {"created_at": "2026-01-02", "status": "failure", "message": "404  Not Found"},
            {"created_at": "2026-01-01", "status": "success", "message": ""},
        ]
    }
    assert task_failure(tasks) == "404 Not Found"
    assert task_failure({"tasks": [{"status": "processing"}]}) is None


def test_import_then_exact_metadata_and_no_marker():
    client = FakeClient([{"status": "importing"}, ACTIVE])
    seen = []
    record = transaction(client, progress=seen.append).run()
    assert record["status"] == "active"
    assert client.created[0]["glancesync_upload"] == "run-1"  # marked before the import
    assert client.posted == [("/v2/images/new/import", import_request("Spain2", "m-1", "public"))]
    ops = client.patched[0]
    assert {"op": "remove", "path": "/hw_disk_bus"} in ops  # copied by Glance, not wanted
    assert {"op": "add", "path": "/type", "value": "base"} in ops
    assert {"op": "add", "path": "/glancesync_source_hash", "value": "md5"} in ops
    assert {"op": "remove", "path": "/glancesync_upload"} in ops
    assert client.deleted == []
    assert seen[-1] == MASTER.size


def test_failed_task_deletes_the_image_and_names_the_message():
    tasks = {"tasks": [{"status": "failure", "message": "Source image status should be active"}]}
    client = FakeClient([{"status": "queued", "os_glance_failed_import": ""}], tasks)
    with pytest.raises(BackendError) as err:
        transaction(client).run()
    assert str(err.value) == (
        "Trento: Import of cirros (glance-download) Failed. "
        "Cause: Source image status should be active"
    )
    assert client.deleted == ["new"]


def test_stuck_import_times_out_and_is_deleted():
    client = FakeClient([{"status": "importing"}])
    with pytest.raises(BackendError) as err:
        transaction(client, timeout=30).run()
    assert "no copy after 30 s (import_timeout)" in str(err.value)
    assert err.value.kind == ErrorKind.TIMEOUT
    assert client.deleted == ["new"]


def test_copy_with_another_checksum_is_not_counted():
    client = FakeClient([{**ACTIVE, "checksum": "other"}])
    with pytest.raises(BackendError, match="checksum mismatch") as err:
        transaction(client).run()
    assert err.value.kind == ErrorKind.CONTENT
    assert client.deleted == ["new"] and client.patched == []


def test_cancel_while_importing_deletes_the_image():
    def progress(nbytes):
        raise Cancelled()

    client = FakeClient([{"status": "importing"}])
    with pytest.raises(Cancelled):
        transaction(client, progress=progress).run()
    assert client.deleted == ["new"]


def test_refused_import_request_deletes_the_image():
    client = FakeClient([{"status": "queued"}])

    def refuse(url, data):
        raise RuntimeError("HTTP 400: Import method glance-download is not enabled")

    client.post = refuse
    with pytest.raises(BackendError, match="not enabled"):
        transaction(client).run()
    assert client.deleted == ["new"]
