"""The upload data path: read-ahead reader, sized uploads, hashes shared by a fan-out.

Issue 7's speed work changed how the bytes of a master image reach a region: a prefetch
thread reads ahead of the upload (``HashingReader``), the body goes out in small chunks
with the size announced in a header (``put_image_data``), and a fan-out hashes
the master once for every region (``fanout.Broadcast``). Each of these can silently
upload wrong data, grow memory, leak a thread or hash N times; these tests pin the
behaviour a user sees. No cloud: the region is a fake ``client.images`` plus a real
glanceclient/keystoneauth/requests stack whose transport adapter is the fake wire.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from glanceclient.common.http import SessionClient
from keystoneauth1 import session as ksa_session

from glancesync.backends import glance_data, glance_http
from glancesync.backends.glance import UPLOAD_MARKER, GlanceBackend
from glancesync.backends.glance_data import PREFETCH_CHUNKS, FileSource, HashingReader
from glancesync.backends.retry import RetryPolicy
from glancesync.errors import BackendError
from glancesync.fanout import Broadcast, FanOut
from glancesync.image import Image
from tests.support import fakeglance
from tests.support.faulty_glance import DATA, master_image
from tests.support.waiting import wait_until

ONCE = RetryPolicy(attempts=1, wait=0.0, max_wait=0.0)


class Chunks:
    """An ImageSource over bytes in ``step``-sized chunks; can fail after some chunks.

    ``pulled`` counts the chunks taken from it and ``closed`` says whether its generator
    was closed (a file or HTTP response released), so read-ahead and cleanup show.
    """

    def __init__(
        self,
        data: bytes = DATA,
        step: int = 1000,
        fail_after: int | None = None,
        error: BaseException | None = None,
        events: list[str] | None = None,
    ):
        self.data, self.step, self.size = data, step, len(data)
        self.fail_after, self.error = fail_after, error or OSError("disk gone")
        self.events = events if events is not None else []
        self.pulled = 0
        self.closed = False

    def chunks(self) -> Iterator[bytes]:
        try:
            for i in range(0, len(self.data), self.step):
                if self.pulled == self.fail_after:
                    self.events.append("source failed")
                    raise self.error
                self.pulled += 1
                self.events.append("chunk")
                yield self.data[i : i + self.step]
        finally:
            self.closed = True


def read_all(reader: HashingReader, size: int) -> bytes:
    """What an HTTP stack does with a file-like body: ``read(size)`` until b""."""
    out = bytearray()
    while piece := reader.read(size):
        out += piece
    return bytes(out)


# --------------------------------------------------------------------------- HashingReader


@pytest.mark.parametrize("size", [-1, 1, 7, 999, 1000, 1001, 4096, 1 << 20])
@pytest.mark.parametrize("prefetch", [0, 2, PREFETCH_CHUNKS])
def test_reader_gives_every_byte_in_order_and_hashes_them(size, prefetch):
    """Read sizes that cut chunks anywhere must neither lose, repeat nor reorder bytes,
    with or without the read-ahead thread; the hashes are what the upload is checked with."""
    data = bytes(i * 7 % 251 for i in range(12_345))  # no period that could hide a reorder
    source = Chunks(data, step=1000)
    progress: list[int] = []
    reader = HashingReader(source, "sha512", progress.append, prefetch=prefetch)
    reader.open()
    try:
        assert read_all(reader, size) == data
        assert reader.read(size) == b"" and reader.read() == b""  # the end stays the end
    finally:
        reader.close()
    assert reader.md5.hexdigest() == hashlib.md5(data).hexdigest()
    assert reader.multihash.hexdigest() == hashlib.sha512(data).hexdigest()
    assert reader.sent == sum(progress) == len(data)
    assert reader.mismatch(hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest()) is None


def test_reader_skips_empty_chunks_and_reads_a_master_file(tmp_path):
    """An empty chunk (an HTTP keep-alive) is not the end; a file source reads whole."""

    class Gappy:
        size = 6

        def chunks(self) -> Iterator[bytes]:
            yield from (b"", b"ab", b"", b"", b"cd", b"", b"ef", b"")

    reader = HashingReader(Gappy())
    reader.open()
    assert read_all(reader, 1) == b"abcdef"

    path = tmp_path / "m-1"
    path.write_bytes(DATA)
    reader = HashingReader(FileSource(str(path), len(DATA), chunk_size=1000), "sha512")
    reader.open()
    assert read_all(reader, 333) == DATA
    assert reader.multihash.hexdigest() == hashlib.sha512(DATA).hexdigest()


@pytest.mark.parametrize("prefetch", [1, PREFETCH_CHUNKS])
def test_read_ahead_is_bounded_for_a_slow_consumer(prefetch):
    """A slow region must not make the reader buffer the master image in memory: the
    thread may hold ``prefetch`` chunks in its queue plus the one waiting for room, and
    no more however long the consumer stalls. It must also really read ahead (overlap)."""
    source = Chunks(step=100)  # 103 chunks
    reader = HashingReader(source, prefetch=prefetch)
    reader.open()
    assert source.pulled == 1 and reader._thread is None  # only the first chunk, inline
    try:
        for consumed in range(1, 6):
            assert reader.read() == DATA[(consumed - 1) * 100 : consumed * 100]
            if consumed == 1:
                continue  # the first chunk came from open(): the thread starts on the next
            ahead = consumed + prefetch + 1
            wait_until(lambda ahead=ahead: source.pulled >= ahead, 2.0, step=0.002)
            time.sleep(0.05)  # a stalled consumer: the producer must stay where it is
            assert source.pulled == ahead
    finally:
        reader.close()


def test_a_source_error_surfaces_on_the_reading_side_and_is_kept():
    """The read-ahead thread's error must reach the upload (never a silent short image)
    and be kept in ``failure``, which the backend reports instead of the HTTP wrapper."""
    error = OSError("disk gone")
    reader = HashingReader(Chunks(fail_after=3, error=error))
    reader.open()
    got = bytearray()
    with pytest.raises(OSError) as info:
        while piece := reader.read(400):
            got += piece
    assert info.value is error and reader.failure is error
    assert bytes(got) == DATA[:3000]
    reader.close()
    reader._thread.join(timeout=2)
    assert not reader._thread.is_alive()


@pytest.mark.parametrize("consumed", [0, 1, 3])
def test_close_stops_the_read_ahead_thread_and_closes_the_source(consumed):
    """An upload that fails mid-way calls ``close()``: the thread blocked on its full
    queue must end and the master file or HTTP response be released, or every failed
    upload would leak a thread and a connection."""
    source = Chunks(step=100)
    reader = HashingReader(source, prefetch=2)
    reader.open()
    for _ in range(consumed):
        reader.read()
    if consumed > 1:
        wait_until(lambda: source.pulled == consumed + 3, 2.0, step=0.002)  # the thread is blocked
    thread = reader._thread
    reader.close()
    reader.close()  # idempotent
    if thread is not None:
        thread.join(timeout=2)
        assert not thread.is_alive()
    assert source.closed
    assert source.pulled < len(DATA) // 100  # it stopped reading, not read to the end


def test_an_unreadable_source_fails_in_open_in_the_callers_thread():
    """The first chunk is read inline by ``open()``: an open error is raised there, before
    the backend creates any image, and no thread is started for it."""
    reader = HashingReader(Chunks(fail_after=0, error=PermissionError(13, "Permission denied")))
    with pytest.raises(PermissionError):
        reader.open()
    assert isinstance(reader.failure, PermissionError) and reader._thread is None


# --------------------------------------------------------------------------- the PUT


class FakeImages(fakeglance.FakeImages):
    """``client.images``; the data arrives through ``Wire`` instead of ``upload``."""

    def __init__(self, events: list[str] | None = None) -> None:
        super().__init__()
        self.chunked_uploads = 0
        self.events = events if events is not None else []

    def create(self, **fields: Any) -> dict[str, Any]:
        self.events.append("create")
        return super().create(**fields)

    def upload(self, image_id: str, body: Any, image_size: int | None = None) -> None:
        """glanceclient's own upload: the backend's PUT must not come here."""
        self.chunked_uploads += 1
        self.store(image_id, read_all(body, 65536))


class Wire(requests.adapters.BaseAdapter):
    """The region's HTTP endpoint as requests hands it a prepared request.

    It consumes an iterable body as urllib3 does and, like urllib3, turns an OSError
    raised while producing the body into a connection error (so the upload sees a
    wrapped error, as in production).
    """

    def __init__(self, images: FakeImages):
        super().__init__()
        self.images = images
        self.puts: list[dict[str, Any]] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        put = {"method": request.method, "url": request.url, "headers": dict(request.headers)}
        put["bytes"] = received = bytearray()
        put["pieces"] = pieces = []
        self.puts.append(put)
        try:
            for piece in request.body:
                received += piece
                pieces.append(len(piece))
        except OSError as exc:
            raise requests.exceptions.ConnectionError(exc, request=request) from exc
        self.images.store(request.url.split("/")[-2], bytes(received))
        response = requests.Response()
        response.status_code, response.request, response.url = 204, request, request.url
        response.raw = io.BytesIO(b"")
        return response

    def close(self) -> None:
        pass


def fake_backend(images: FakeImages) -> tuple[GlanceBackend, Wire]:
    """A backend whose region client has fake ``images`` and a real keystoneauth adapter
    (glanceclient's SessionClient) over the fake wire, so ``put_image_data`` sends its
    request exactly as against a cloud."""
    wire = Wire(images)
    transport = requests.Session()
    transport.mount("http://", wire)
    http = SessionClient(
        ksa_session.Session(session=transport), endpoint_override="http://glance.test"
    )
    client = SimpleNamespace(images=images, http_client=http)
    return fakeglance.backend_with(client, ONCE), wire


def upload(backend: GlanceBackend, source: Any, master: Image | None = None, **kw: Any) -> Image:
    return backend.upload("Trento", master or master_image(), True, {}, source, **kw)


def assert_sized(put: dict[str, Any], size: int) -> None:
    """A single PUT of the image file that announces its size, sent in chunks Glance reads
    cheaply (no Content-Length: see ``put_image_data``), never more bytes than announced."""
    assert put["method"] == "PUT" and put["url"].endswith("/v2/images/id-1/file")
    headers = {k.lower(): v for k, v in put["headers"].items()}
    assert headers["x-openstack-image-size"] == str(size)
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert max(put["pieces"]) <= glance_http.SEND_PIECE
    assert len(put["bytes"]) <= size


def test_an_upload_announces_the_size_and_sends_exactly_the_image_in_small_chunks():
    images = FakeImages()
    backend, wire = fake_backend(images)
    new = upload(backend, Chunks())
    assert len(wire.puts) == 1 and images.chunked_uploads == 0
    assert_sized(wire.puts[0], len(DATA))
    assert bytes(wire.puts[0]["bytes"]) == DATA
    assert new.checksum == master_image().checksum and new.status == "active"
    assert UPLOAD_MARKER not in images.records["id-1"]


def test_big_source_chunks_go_out_as_small_pieces_of_the_same_bytes():
    """A master read in 1 MiB chunks is sent in pieces of at most SEND_PIECE bytes (what
    the target Glance reads cheaply), in order, none lost or repeated."""
    data = bytes(range(256)) * (3 * 4096 + 7)  # 3 MiB and a bit
    images = FakeImages()
    backend, wire = fake_backend(images)
    upload(backend, Chunks(data, step=1024 * 1024), master_image(data))
    assert_sized(wire.puts[0], len(data))
    assert bytes(wire.puts[0]["bytes"]) == data
    assert len(wire.puts[0]["pieces"]) >= len(data) // glance_http.SEND_PIECE


@pytest.mark.parametrize("extra", [-100, +100, -len(DATA) + 1000])
@pytest.mark.parametrize("with_hashes", [True, False])
def test_a_source_of_the_wrong_size_fails_and_leaves_no_image(extra, with_hashes):
    """A master whose data is shorter or longer than its declared size must not become a
    region image: the upload fails with the mismatch it causes (the checksum when the
    master has one, else the sizes) and the half image is deleted."""
    data = DATA[:extra] if extra < 0 else DATA + b"x" * extra
    master = master_image() if with_hashes else master_image(checksum="", os_hash_value="")
    images = FakeImages()
    backend, wire = fake_backend(images)
    with pytest.raises(BackendError) as info:
        upload(backend, Chunks(data), master)
    if with_hashes:
        got = hashlib.md5(data).hexdigest()
        cause = f"checksum mismatch (expected {master.checksum}, got {got})"
    else:
        cause = f"size mismatch (expected {len(DATA)}, got {len(data)})"
    assert str(info.value) == f"Trento: Upload of cirros Failed. Cause: {cause}"
    assert images.created == ["id-1"] and images.records == {}  # not retried, deleted
    assert len(wire.puts) == 1 and images.chunked_uploads == 0
    assert_sized(wire.puts[0], len(DATA))
    assert bytes(wire.puts[0]["bytes"]) == data[: len(DATA)]


def test_a_source_error_during_the_put_is_what_the_upload_reports():
    """The HTTP stack wraps the master's error in a connection error; the report must
    name the real cause (the master read), and the half image must go."""
    images = FakeImages()
    backend, wire = fake_backend(images)
    source = Chunks(fail_after=4)
    with pytest.raises(BackendError) as info:
        upload(backend, source)
    assert str(info.value) == "Trento: Upload of cirros Failed. Cause: disk gone"
    assert images.created == ["id-1"] and images.records == {}
    assert bytes(wire.puts[0]["bytes"]) == DATA[:4000] and source.closed


def test_an_unopenable_master_fails_before_any_image_is_created():
    """A missing master file must not leave an empty image in the region: the first
    chunk is read before ``images.create``."""
    images = FakeImages()
    backend, wire = fake_backend(images)
    with pytest.raises(BackendError) as info:
        upload(backend, FileSource("/nonexistent/m-1", len(DATA)))
    assert str(info.value) == (
        "Trento: Cannot open the image cirros to upload. Cause: No such file or directory"
    )
    assert images.created == [] and wire.puts == []


def test_the_first_chunk_is_read_before_the_image_is_created():
    events: list[str] = []
    images = FakeImages(events)
    backend, _ = fake_backend(images)
    upload(backend, Chunks(events=events))
    assert events[:2] == ["chunk", "create"]

    events.clear()
    error = PermissionError(13, "Permission denied")
    with pytest.raises(BackendError, match="^Trento: Cannot open the image cirros to upload"):
        upload(backend, Chunks(fail_after=0, error=error, events=events))
    assert events == ["source failed"]


# --------------------------------------------------------------------------- fan-out hashes


class CountingHashlib:
    """Stands in for ``hashlib`` in glance_data: counts the bytes each algorithm hashed."""

    def __init__(self) -> None:
        self.hashed: Counter[str] = Counter()
        self.lock = threading.Lock()

    def md5(self, *args: Any, **kwargs: Any) -> Any:
        return _Counted(self, "md5", hashlib.md5(*args, **kwargs))

    def new(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return _Counted(self, name, hashlib.new(name, *args, **kwargs))


class _Counted:
    def __init__(self, owner: CountingHashlib, name: str, inner: Any):
        self.owner, self.name, self.inner = owner, name, inner

    def update(self, data: bytes) -> None:
        with self.owner.lock:
            self.owner.hashed[self.name] += len(data)
        self.inner.update(data)

    def hexdigest(self) -> str:
        return self.inner.hexdigest()


@pytest.fixture
def counting(monkeypatch) -> CountingHashlib:
    counter = CountingHashlib()
    monkeypatch.setattr(glance_data, "hashlib", counter)
    return counter


def test_broadcast_consumers_share_one_hash_of_the_master(counting):
    """Three regions reading one broadcast must each see the hashes of the full master,
    computed once by the reader thread (not once per region: 3x the CPU)."""
    data = bytes(i * 13 % 253 for i in range(50_000))
    broadcast = Broadcast(Chunks(data, step=997), 3, buffer_bytes=3000, hash_algo="sha512")
    readers = [HashingReader(c, "sha512") for c in broadcast.consumers]
    broadcast.start()

    def consume(reader: HashingReader) -> bytes:
        reader.open()
        return read_all(reader, 512)

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(consume, readers)) == [data] * 3
    for reader in readers:
        assert reader.md5.hexdigest() == hashlib.md5(data).hexdigest()
        assert reader.multihash.hexdigest() == hashlib.sha512(data).hexdigest()
        assert reader.md5 is broadcast.hashes.md5 and reader.sent == len(data)
    assert counting.hashed == {"md5": len(data), "sha512": len(data)}


def test_fan_out_uploads_are_verified_with_the_shared_hashes(counting):
    """End to end through the backend: three regions upload one master via FanOut, each
    upload is verified against the master's checksum and multihash, and the master is
    read and hashed exactly once."""
    images = FakeImages()
    backend, wire = fake_backend(images)
    opened: list[Chunks] = []

    def open_source(image: Image) -> Chunks:
        opened.append(Chunks(step=700))
        return opened[-1]

    fanout = FanOut(open_source, join_timeout=5, buffer_bytes=2100)
    regions = ["Trento", "Burgos", "Zurich"]
    fanout.expect("m-1", regions)
    master = master_image()

    def sync(region: str) -> Image:
        try:
            return backend.upload(region, master, True, {}, fanout.source_for(region, master))
        finally:
            fanout.withdraw(region)

    with ThreadPoolExecutor(max_workers=3) as pool:
        uploaded = list(pool.map(sync, regions))
    assert [image.checksum for image in uploaded] == [master.checksum] * 3
    assert len(opened) == 1 and fanout.stats().reads == {"m-1": 1}
    assert sorted(bytes(put["bytes"]) for put in wire.puts) == [DATA] * 3
    assert counting.hashed == {"md5": len(DATA), "sha512": len(DATA)}
