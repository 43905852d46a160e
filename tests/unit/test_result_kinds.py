"""A region's result keeps the kind of each error it records (issue 20 item 3), set from
the ``BackendError`` where the executor, the engine or the batch records it, so that the
service counts a finished task's errors without reading their text; the REST form of the
result does not show it."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from glancesync.batch import SyncOptions
from glancesync.errors import BackendError, ErrorKind
from glancesync.image import Image
from glancesync.result import FAILED, ImageResult, RegionResult
from tests.support.syncworld import build_world

TEXT = "Burgos: Upload of image1 Failed. Cause: read timed out"  # not a timeout


class Failing:
    """The mock, whose uploads to Burgos raise ``Failing.error``."""

    error: Exception = BackendError(TEXT, ErrorKind.NOT_FOUND)

    def __init__(self, inner: Any, reads: Counter, lock: threading.Lock):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upload(self, region: str, master: Image, *args: Any, **kwargs: Any) -> Image:
        if self.inner.full_name(region) == "Burgos":
            raise self.error
        return self.inner.upload(region, master, *args, **kwargs)


@pytest.fixture
def world(monkeypatch):
    return build_world(monkeypatch, Failing, [100, 200])


def test_a_failed_upload_keeps_its_kind_on_the_image_and_the_region(world):
    gs, *_ = world
    result = gs.sync_region("Burgos")
    image1 = next(entry for entry in result.images if entry.name == "image1")
    assert (image1.result, image1.error, image1.error_kind) == (FAILED, TEXT, "not_found")
    assert (result.error, result.error_kind) == (TEXT, ErrorKind.NOT_FOUND)
    assert result.error_kinds() == [ErrorKind.NOT_FOUND]  # one failure, given twice


def test_an_unexpected_error_is_other(world, monkeypatch):
    monkeypatch.setattr(Failing, "error", RuntimeError("connection timed out"))
    gs, *_ = world
    assert gs.sync_region("Burgos").error_kinds() == [ErrorKind.OTHER]


def test_a_region_that_fails_before_running_keeps_its_kind(world):
    gs, store, *_ = world
    store.fail_on("Burgos", "timeout")
    result = gs.sync_region("Burgos")
    assert (result.failed, result.error_kind) == (True, ErrorKind.TIMEOUT)
    assert result.error_kinds() == [ErrorKind.TIMEOUT]


def test_a_failed_master_listing_gives_every_region_its_kind(world):
    gs, store, *_ = world
    store.fail_on("Valladolid", "timeout")
    results = gs.sync_regions(["Caceres", "other:Madrid"])
    assert [r.error_kind for r in results] == [ErrorKind.TIMEOUT, ErrorKind.TIMEOUT]


def test_a_region_cancelled_before_its_batch_is_cancelled(world):
    gs, *_ = world
    options = SyncOptions(cancel=lambda ref: ref.full == "Caceres")
    caceres, madrid = gs.sync_regions(["Caceres", "other:Madrid"], options)
    assert (caceres.error, caceres.error_kind) == ("cancelled", ErrorKind.CANCELLED)
    assert not madrid.failed and madrid.error_kinds() == []


def test_the_rest_form_has_no_kind():
    entry = ImageResult("img", "pending_upload", "upload", FAILED, "x", error_kind="timeout")
    result = RegionResult("Burgos", True, "x", images=[entry], error_kind=ErrorKind.TIMEOUT)
    assert result.to_dict() == {
        "region": "Burgos",
        "failed": True,
        "error": "x",
        "summary": None,
        "images": [
            {"name": "img", "statusBefore": "pending_upload", "action": "upload"}
            | {"result": FAILED, "error": "x"}
        ],
    }


def test_each_distinct_failure_is_one_kind_and_an_unknown_one_is_other():
    images = [
        ImageResult("a", None, "upload", FAILED, "a failed", error_kind=ErrorKind.QUOTA),
        ImageResult("b", None, "upload", FAILED, "b failed", error_kind=ErrorKind.QUOTA),
        ImageResult("c", None, "upload", "not_run", "being uploaded by another run"),
    ]
    result = RegionResult("Burgos", True, "the region", images=images)
    assert result.error_kinds() == [ErrorKind.QUOTA, ErrorKind.QUOTA, ErrorKind.OTHER]
