"""The real backend's listing (pages, hidden images, per-page timeout: reference 2.4) and its
metadata updates as JSON patches of the changed fields only (issue 11 item 5), against a fake
glanceclient; tests/integration/test_odd_images_real.py does the same on real Glance."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

from glancesync.backends.retry import RetryPolicy
from glancesync.image import Image
from tests.support.fakeglance import FakeImages, backend_with

PAGE_DELAY = 0.3  # each page takes this long; the listing's timeout is 1 s


class PagedImages(FakeImages):
    """``images.list`` as glanceclient pages it: one slow request per page."""

    def __init__(self, visible: int, hidden: int) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []
        for n in range(visible + hidden):
            self.records[f"i{n}"] = {"id": f"i{n}", "name": f"n{n}", "os_hidden": n >= visible}

    def list(self, page_size: int | None = None, filters: dict | None = None, **kw: Any):
        self.calls.append({"page_size": page_size, "filters": dict(filters or {})})
        hidden = str((filters or {}).get("os_hidden", "false")).lower() == "true"
        chosen = [r for r in self.records.values() if r["os_hidden"] == hidden]
        size = page_size or 20  # glanceclient's default
        for start in range(0, len(chosen), size):
            time.sleep(PAGE_DELAY)
            yield from (dict(r) for r in chosen[start : start + size])


def listing_backend(images: FakeImages, timeout: int = 1):
    backend = backend_with(SimpleNamespace(images=images), RetryPolicy(attempts=1))
    backend.target.list_images_timeout = timeout
    return backend


def test_listing_asks_for_pages_of_1000_and_lists_hidden_images():
    images = PagedImages(visible=1500, hidden=3)
    listed = listing_backend(images, timeout=30).list_images("Trento")
    assert len(listed) == 1503 and sum(i.os_hidden for i in listed) == 3
    assert [c["page_size"] for c in images.calls] == [1000, 1000]
    assert images.calls[1]["filters"] == {"os_hidden": "true"}


def test_list_images_timeout_limits_each_page_not_the_whole_listing():
    # Four pages of 0.3 s: 1.2 s in all, more than the 1 s timeout, each page well under.
    images = PagedImages(visible=3500, hidden=0)
    assert len(listing_backend(images, timeout=1).list_images("Trento")) == 3500


# ------------------------------------------------------------------- metadata updates


class PatchClient:
    """glanceclient's ``http_client``: records each PATCH and applies it to the record."""

    def __init__(self, images: FakeImages) -> None:
        self.images, self.sent = images, []

    def patch(self, url: str, headers: dict, data: str):
        ops = json.loads(data)
        self.sent.append((url, headers["Content-Type"], ops))
        record = self.images.records[url.rsplit("/", 1)[1]]
        for op in ops:
            key = op["path"][1:].replace("~1", "/").replace("~0", "~")
            if op["op"] == "remove":
                del record[key]
            else:
                record[key] = op["value"]
        return None, dict(record)


class SchemaCheckingImages(FakeImages):
    """glanceclient's ``images.update`` validates the whole image first, as real Glance's
    schema makes it do: a non-UUID kernel_id anywhere fails every update."""

    def update(self, image_id: str, remove_props=None, **changes: Any):
        if "kernel_id" in self.records[image_id]:
            raise ValueError("'vmlinuz' does not match the kernel_id pattern")
        return super().update(image_id, remove_props, **changes)


def update_backend():
    images = SchemaCheckingImages()
    images.records["r1"] = {
        "id": "r1",
        "name": "img",
        "visibility": "public",
        "protected": False,
        "min_ram": 0,
        "min_disk": 0,
        "os_hidden": False,
        "kernel_id": "vmlinuz",
        "type": "old",
        "a/b~c": "x",
        "glancesync_source_id": "m1",
    }
    http = PatchClient(images)
    client = SimpleNamespace(images=images, http_client=http)
    return backend_with(client, RetryPolicy(attempts=1)), images, http


def test_update_of_an_image_that_fails_the_schema_sends_only_the_changes():
    backend, images, http = update_backend()
    region = Image(name="img", id="r1")
    updated = backend.update(
        "Trento", region, "img", True, {"type": "new", "a/b~c": "x"}, {"min_ram": 512}
    )
    url, content_type, ops = http.sent[0]
    assert (url, content_type) == ("/v2/images/r1", "application/openstack-images-v2.1-json-patch")
    assert ops == [
        {"op": "replace", "path": "/type", "value": "new"},
        {"op": "replace", "path": "/min_ram", "value": 512},
        {"op": "remove", "path": "/kernel_id"},
    ]
    assert updated.min_ram == 512 and updated.user_properties["type"] == "new"
    assert images.records["r1"]["glancesync_source_id"] == "m1"  # reserved: never removed


def test_update_with_nothing_to_change_sends_nothing():
    backend, images, http = update_backend()
    del images.records["r1"]["kernel_id"]
    props = {"type": "old", "a/b~c": "x"}
    backend.update("Trento", Image(name="img", id="r1"), "img", True, props, {"protected": False})
    assert http.sent == []


def test_escaped_pointer_and_added_property():
    backend, _, http = update_backend()
    props = {"a/b~c": "y", "new": "1", "glancesync_source_id": "other"}
    backend.update("Trento", Image(name="img", id="r1"), "img2", False, props)
    assert http.sent[0][2] == [
        {"op": "replace", "path": "/name", "value": "img2"},
        {"op": "replace", "path": "/visibility", "value": "private"},
        {"op": "replace", "path": "/a~1b~0c", "value": "y"},
        {"op": "add", "path": "/new", "value": "1"},
        {"op": "remove", "path": "/kernel_id"},
        {"op": "remove", "path": "/type"},
    ]
