"""Transfer retries, resumed downloads, read-back verification and the size sent up front.

Issue 7 items 2, 3 and 5, without a cloud: a fake glanceclient stands in for the region,
so every failure can be staged exactly. The testbed versions of these scenarios are in
tests/integration/test_transfer_reliability.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from glanceclient import exc as gexc
from keystoneauth1 import exceptions as ksa

from glancesync.backends.glance import UPLOAD_MARKER, GlanceBackend
from glancesync.backends.glance_data import ApiSource, SourceOpenError
from glancesync.backends.retry import Permanent, RetryPolicy, is_transient
from glancesync.errors import BackendError
from glancesync.image import Image
from tests.support.faulty_glance import (
    DATA,
    FAST,
    FakeImages,
    RangeServer,
    break_after,
    fake_backend,
    master_image,
    reset,
)
from tests.support.streamfaults import with_fault


class Chunks:
    """An ImageSource over bytes; counts how often it is read."""

    def __init__(self, data: bytes = DATA, step: int = 1000):
        self.data, self.step, self.size, self.reads = data, step, len(data), 0

    def chunks(self) -> Iterator[bytes]:
        self.reads += 1
        for i in range(0, len(self.data), self.step):
            yield self.data[i : i + self.step]


def upload(backend: GlanceBackend, source: Any, master: Image | None = None, **kw: Any) -> Image:
    master = master or master_image()
    return backend.upload("Trento", master, True, {"type": "base"}, source, **kw)


# --------------------------------------------------------------------------- is_transient


@pytest.mark.parametrize(
    "error",
    [
        reset(),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        ksa.ConnectFailure("Unable to establish connection"),
        ksa.ConnectTimeout("connect timed out"),
        ksa.http.ServiceUnavailable(),
        ksa.http.BadGateway(),
        gexc.HTTPServiceUnavailable(),
        gexc.HTTPInternalServerError(),
        gexc.HTTPException("507 Insufficient Storage"),
    ],
)
def test_transient_errors(error):
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        gexc.HTTPException("415 Unsupported Media Type: data is not raw"),
        gexc.HTTPBadRequest(),
        gexc.HTTPForbidden(),
        gexc.HTTPConflict(),
        ksa.http.NotFound(),
        Permanent("checksum mismatch"),
        BackendError("Trento: Cannot open the image x to upload. Cause: connection refused"),
        ValueError("bad"),
    ],
)
def test_permanent_errors(error):
    assert not is_transient(error)


def test_a_wrapped_socket_error_is_transient_but_not_after_from_none():
    """glanceclient re-raises keystoneauth errors inside ``except``: look at the chain."""
    try:
        try:
            raise ksa.ConnectFailure("reset")
        except ksa.ConnectFailure:
            raise gexc.CommunicationError(message="Error finding address") from None
    except gexc.CommunicationError as exc:
        assert not is_transient(exc)  # ``from None``: the error was already final
    try:
        try:
            raise ksa.ConnectFailure("reset")
        except ksa.ConnectFailure:
            raise gexc.CommunicationError(message="Error finding address")  # noqa: B904
    except gexc.CommunicationError as exc:
        assert is_transient(exc)


def test_policy_from_env_and_its_waits():
    env = {"GLANCESYNC_RETRY_ATTEMPTS": "6", "GLANCESYNC_RETRY_WAIT": "0.25"}
    assert RetryPolicy.from_env(env) == RetryPolicy(attempts=6, wait=0.25, max_wait=8.0)
    assert RetryPolicy.from_env({"GLANCESYNC_RETRY_ATTEMPTS": "x"}) == RetryPolicy()
    assert RetryPolicy.from_env({"GLANCESYNC_RETRY_ATTEMPTS": "0"}).attempts == 1
    waits = RetryPolicy().retrying().wait
    states = [SimpleNamespace(attempt_number=n) for n in range(1, 8)]
    assert [waits(s) for s in states] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_policy_call_stops_after_the_attempts():
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        raise reset()

    with pytest.raises(ConnectionResetError):
        FAST.call(flaky)
    assert len(calls) == 3


# --------------------------------------------------------------------------- upload retries


def test_size_is_sent_up_front_and_the_upload_is_verified():
    images = FakeImages()
    sent: list[int] = []
    new = upload(fake_backend(images), Chunks(), progress=sent.append)
    assert images.uploads == [{"id": "id-1", "image_size": len(DATA), "bytes": len(DATA)}]
    assert new.checksum == master_image().checksum and sum(sent) == len(DATA)
    assert UPLOAD_MARKER not in images.records["id-1"]


def test_transient_upload_failure_is_retried_on_a_clean_region():
    images = FakeImages()
    images.upload_faults = [gexc.HTTPServiceUnavailable(), reset()]
    source, sent = Chunks(), []
    new = upload(fake_backend(images), source, progress=sent.append)
    assert images.created == ["id-1", "id-2", "id-3"] and source.reads == 3
    assert list(images.records) == ["id-3"] == [new.id]  # each half image deleted
    assert sum(sent) == len(DATA)  # progress counts every byte once across tries


def test_retries_are_bounded_and_the_last_error_reported():
    images = FakeImages()
    images.upload_faults = [reset(), reset(), reset(), reset()]
    with pytest.raises(BackendError) as info:
        upload(fake_backend(images), Chunks())
    assert len(images.created) == 3 and images.records == {}
    assert str(info.value).startswith("Trento: Upload of cirros Failed. Cause: ")
    assert "reset" in str(info.value).lower()


def test_a_rejected_format_is_not_retried():
    images = FakeImages()
    images.upload_faults = [gexc.HTTPException("415 Unsupported Media Type")]
    with pytest.raises(BackendError, match="Failed. Cause: .*415"):
        upload(fake_backend(images), Chunks())
    assert images.created == ["id-1"] and images.records == {}


def test_a_half_image_the_region_kept_is_deleted_by_the_next_try():
    """The region refused the delete while it was down; the next try removes it first."""
    images = FakeImages()
    images.upload_faults = [reset()]
    images.delete_faults = [ksa.ConnectFailure("connection refused")] * FAST.attempts
    new = upload(fake_backend(images), Chunks())
    assert list(images.records) == [new.id] == ["id-2"]


def test_a_half_image_whose_first_delete_fails_is_deleted_on_retry():
    """A Glance still closing the broken PUT answers the first delete with a 500: the
    delete is tried again, so a failure that is not retried leaves no half image."""
    images = FakeImages()
    images.upload_faults = [gexc.HTTPException("415 Unsupported Media Type")]
    images.delete_faults = [gexc.HTTPInternalServerError("500 Internal Server Error")] * 2
    with pytest.raises(BackendError, match="Failed. Cause: .*415"):
        upload(fake_backend(images), Chunks())
    assert images.created == ["id-1"] and images.records == {}


# --------------------------------------------------------------------------- integrity


def test_a_wrong_master_multihash_fails_without_retry_and_leaves_nothing():
    images = FakeImages()
    bad = master_image(os_hash_value="0" * 128)  # md5 right, sha512 wrong
    with pytest.raises(BackendError) as info:
        upload(fake_backend(images), Chunks(), bad)
    assert str(info.value) == (
        "Trento: Upload of cirros Failed. Cause: multihash mismatch "
        f"(expected {'0' * 128}, got {hashlib.sha512(DATA).hexdigest()})"
    )
    assert images.created == ["id-1"] and images.records == {}


def test_the_multihash_read_back_from_the_region_must_be_the_masters():
    """Bytes sent were right, but the region stored something else: caught on read-back."""
    images = FakeImages()
    images.tamper = {"os_hash_value": "f" * 128}
    with pytest.raises(BackendError) as info:
        upload(fake_backend(images), Chunks())
    expected = master_image().os_hash_value
    assert str(info.value).endswith(f"multihash mismatch (expected {expected}, got {'f' * 128})")
    assert images.records == {} and len(images.created) == 1


def test_the_checksum_read_back_from_the_region_must_be_the_masters():
    images = FakeImages()
    images.tamper = {"checksum": "e" * 32}
    with pytest.raises(BackendError, match=r"checksum mismatch \(expected [0-9a-f]{32}, got e+\)"):
        upload(fake_backend(images), Chunks())
    assert images.records == {}


def test_another_hash_algorithm_in_the_region_is_not_compared():
    images = FakeImages()
    images.tamper = {"os_hash_algo": "sha256", "os_hash_value": "ab"}
    assert upload(fake_backend(images), Chunks()).os_hash_algo == "sha256"


# --------------------------------------------------------------------------- resumed download


def test_a_broken_download_resumes_at_the_byte_it_reached():
    server = RangeServer()
    source = ApiSource(with_fault(server, break_after(4321)), "m-1", len(DATA), FAST)
    assert b"".join(source.chunks()) == DATA
    assert server.offsets == [0, 4321] and source.resumed_at == [4321]


def test_resumes_are_bounded():
    server = RangeServer()
    source = ApiSource(with_fault(server, break_after(10, times=5)), "m-1", len(DATA), FAST)
    with pytest.raises(ConnectionResetError):
        b"".join(source.chunks())
    assert server.offsets == [0, 10, 20]


def test_a_non_transient_stream_error_is_not_resumed():
    server = RangeServer()
    source = ApiSource(
        with_fault(server, break_after(10, error=ValueError)), "m-1", len(DATA), FAST
    )
    with pytest.raises(ValueError):
        b"".join(source.chunks())
    assert server.offsets == [0]


def test_open_failure_is_retried_then_reported_as_cannot_open():
    calls: list[int] = []

    def down(offset: int) -> Iterator[bytes]:
        calls.append(offset)
        raise ksa.http.ServiceUnavailable()

    with pytest.raises(SourceOpenError):
        next(ApiSource(down, "m-1", 10, FAST).chunks())
    assert calls == [0, 0, 0]


def test_upload_from_a_resumed_download_has_the_right_checksum():
    images = FakeImages()
    server = RangeServer()
    source = ApiSource(with_fault(server, break_after(5000)), "m-1", len(DATA), FAST)
    new = upload(fake_backend(images), source)
    assert new.checksum == hashlib.md5(DATA).hexdigest()
    assert server.offsets == [0, 5000] and images.created == ["id-1"]
