"""Each ``BackendError`` of the real backend carries the kind of its failure, set where it
is raised (issue 20 item 3): the service labels its error metrics by it, without reading
the English message (docs/monitoring.md)."""

from __future__ import annotations

import pickle
from types import SimpleNamespace
from typing import Any

import pytest
from glanceclient import exc as gexc
from keystoneauth1 import exceptions as ksa

from glancesync.backends.glance_errors import kind_of
from glancesync.backends.retry import RetryPolicy
from glancesync.errors import BackendError, Cancelled, ErrorKind, RegionNotFound
from glancesync.image import Image
from tests.support.fakeglance import FakeImages, backend_with

ONCE = RetryPolicy(attempts=1, wait=0.0, max_wait=0.0)


class Failing(FakeImages):
    """``client.images`` whose every call raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def list(self, **kw: Any):
        raise self.error

    def get(self, image_id: str) -> dict[str, Any]:
        raise self.error

    def delete(self, image_id: str) -> None:
        raise self.error


def backend(error: BaseException):
    return backend_with(SimpleNamespace(images=Failing(error)), ONCE)


def image(name: str = "img") -> Image:
    return Image(name=name, id="id-1", region="Trento")


def test_a_timeout_of_the_glance_session_is_kind_timeout():
    with pytest.raises(BackendError) as raised:
        backend(ksa.ConnectTimeout("Request to http://g timed out")).list_images("Trento")
    assert str(raised.value) == "Trento: Timeout while retrieving image list."
    assert raised.value.kind is ErrorKind.TIMEOUT


def test_a_403_is_refused():
    with pytest.raises(BackendError) as raised:
        backend(gexc.HTTPForbidden("403 Forbidden: protected")).delete("Trento", "id-1")
    assert raised.value.kind is ErrorKind.REFUSED
    assert str(raised.value).startswith("Trento: Deletion of image id-1 Failed. Cause: ")


def test_an_image_named_timeout_that_is_not_found_is_not_found():
    failing = backend(gexc.HTTPNotFound("404 Not Found"))
    with pytest.raises(BackendError) as raised:
        failing.update("Trento", image("timeout-test"), "timeout-test", True, {})
    assert "Update of timeout-test failed" in str(raised.value)
    assert raised.value.kind is ErrorKind.NOT_FOUND


def test_a_refused_connection_is_connection():
    error = ksa.ConnectFailure("Unable to establish connection to http://g:9292: refused")
    with pytest.raises(BackendError) as raised:
        backend(error).images_named("Trento", "img")
    assert raised.value.kind is ErrorKind.CONNECTION


def test_a_missing_region_is_not_found():
    missing = backend_with(SimpleNamespace(images=FakeImages()), ONCE)

    def no_region(region: str, kind: str = "data") -> Any:
        raise RegionNotFound("region not found")

    missing._client = no_region  # type: ignore[method-assign]
    with pytest.raises(RegionNotFound) as raised:
        missing.list_images("Nowhere")
    assert raised.value.kind is ErrorKind.NOT_FOUND
    with pytest.raises(BackendError) as raised:
        missing.delete("Nowhere", "id-1")
    assert str(raised.value).endswith("Cause: region not found")
    assert raised.value.kind is ErrorKind.NOT_FOUND


def test_keystone_failures_are_authentication_and_region_list():
    broken = backend_with(SimpleNamespace(images=FakeImages()), ONCE)

    def refused(*args: Any) -> Any:
        raise ksa.Unauthorized("The request you have made requires authentication.")

    broken._catalog_regions = refused  # type: ignore[method-assign]
    broken._session = refused  # type: ignore[method-assign]
    with pytest.raises(BackendError, match="Error retrieving region list") as raised:
        broken.regions()
    assert raised.value.kind is ErrorKind.REGION_LIST
    with pytest.raises(BackendError, match="Error authenticating") as raised:
        broken.tenant_id()
    assert raised.value.kind is ErrorKind.AUTH


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (gexc.HTTPServiceUnavailable("503 Service Unavailable"), ErrorKind.UNAVAILABLE),
        (gexc.HTTPConflict("409 Conflict"), ErrorKind.CONFLICT),
        (gexc.HTTPOverLimit("413 quota exceeded"), ErrorKind.QUOTA),
        (gexc.HTTPUnauthorized("401"), ErrorKind.REFUSED),
        (ConnectionResetError("reset by peer"), ErrorKind.CONNECTION),
        (TimeoutError(), ErrorKind.TIMEOUT),
        (ValueError("a connection timeout-test image"), ErrorKind.OTHER),
    ],
)
def test_kind_of_library_errors(error, kind):
    assert kind_of(error) is kind


def test_a_wrapped_error_is_judged_by_what_it_wraps():
    try:
        try:
            raise gexc.HTTPNotFound("404")
        except gexc.HTTPNotFound as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert kind_of(outer) is ErrorKind.NOT_FOUND


def test_defaults_and_pickling_keep_the_kind():
    assert BackendError("x").kind is ErrorKind.OTHER
    assert Cancelled().kind is ErrorKind.CANCELLED
    again = pickle.loads(pickle.dumps(BackendError("Trento: Upload failed", ErrorKind.CONTENT)))
    assert (type(again), str(again), again.kind) == (
        BackendError,
        "Trento: Upload failed",
        ErrorKind.CONTENT,
    )


class Tampering(FakeImages):
    """Stores the bytes it gets, but reports another checksum than theirs."""

    def upload(self, image_id: str, body: Any, image_size: int | None = None) -> None:
        data = b""
        while piece := body.read(4096):
            data += piece
        self.store(image_id, data)
        self.records[image_id]["checksum"] = "0" * 32


class Chunks:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def chunks(self):
        yield self.data


def test_a_checksum_mismatch_is_content_and_a_missing_source_other():
    from tests.support.imagedata import image_for

    data = b"x" * 5000
    uploader = backend_with(SimpleNamespace(images=Tampering()), ONCE)
    with pytest.raises(BackendError, match="checksum mismatch") as raised:
        uploader.upload("Trento", image_for(data), True, {}, Chunks(data))
    assert raised.value.kind is ErrorKind.CONTENT
    with pytest.raises(BackendError, match="no image data") as raised:
        uploader.upload("Trento", image_for(data), True, {}, None)
    assert raised.value.kind is ErrorKind.OTHER


def test_a_master_that_cannot_be_opened_gives_the_kind_of_its_failure():
    from glancesync.backends.glance_data import ApiSource
    from tests.support.imagedata import image_for

    def gone(offset: int):
        raise gexc.HTTPNotFound("404 Not Found")

    data = b"y" * 100
    uploader = backend_with(SimpleNamespace(images=FakeImages()), ONCE)
    source = ApiSource(gone, "master-id", len(data), ONCE)
    with pytest.raises(BackendError, match="Cannot open the image") as raised:
        uploader.upload("Trento", image_for(data), True, {}, source)
    assert raised.value.kind is ErrorKind.NOT_FOUND


def test_the_mocks_listing_timeout_and_missing_region_have_their_kinds():
    from glancesync.backends.mock import MockStore

    store = MockStore({"Burgos": []})
    store.fail_on("Burgos", "timeout")
    with pytest.raises(BackendError, match="Timeout while retrieving") as raised:
        store.list_images("Burgos")
    assert raised.value.kind is ErrorKind.TIMEOUT
    with pytest.raises(RegionNotFound) as raised:
        store.list_images("Nowhere")
    assert raised.value.kind is ErrorKind.NOT_FOUND
