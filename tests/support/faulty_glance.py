"""A Glance region without a cloud, for the retry tests: ``client.images`` whose uploads and
deletes fail as each test stages them, and a master served by byte range whose streams
break where a test says (tests.support.streamfaults)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from glancesync.backends.glance import GlanceBackend
from glancesync.backends.retry import RetryPolicy
from glancesync.image import Image
from tests.support import fakeglance
from tests.support.imagedata import image_for

FAST = RetryPolicy(attempts=3, wait=0.0, max_wait=0.0)


DATA = bytes(range(256)) * 40  # 10 240 bytes


def master_image(data: bytes = DATA, **changes: Any) -> Image:
    return image_for(data, **changes)


class FakeImages(fakeglance.FakeImages):
    """``client.images`` with glanceclient's chunked upload and faults to stage per call."""

    def __init__(self) -> None:
        super().__init__()
        self.uploads: list[dict[str, Any]] = []
        self.upload_faults: list[BaseException] = []
        self.delete_faults: list[BaseException] = []
        self.tamper: dict[str, str] = {}  # fields Glance "stores" differently

    def upload(self, image_id: str, body: Any, image_size: int | None = None) -> None:
        data = b""
        while piece := body.read(700):
            data += piece
        self.uploads.append({"id": image_id, "image_size": image_size, "bytes": len(data)})
        if self.upload_faults:
            raise self.upload_faults.pop(0)
        self.store(image_id, data)
        self.records[image_id].update(self.tamper)

    def delete(self, image_id: str) -> None:
        if self.delete_faults:
            raise self.delete_faults.pop(0)
        super().delete(image_id)


def fake_backend(images: FakeImages, retry: RetryPolicy = FAST) -> GlanceBackend:
    return fakeglance.backend_with(SimpleNamespace(images=images), retry)


def reset() -> ConnectionResetError:
    return ConnectionResetError(104, "Connection reset by peer")


class RangeServer:
    """``open_stream(offset)`` of ApiSource over bytes, recording the offsets asked."""

    def __init__(self, data: bytes = DATA, step: int = 1000):
        self.data, self.step, self.offsets = data, step, []

    def __call__(self, offset: int) -> Iterator[bytes]:
        self.offsets.append(offset)
        rest = self.data[offset:]
        return iter([rest[i : i + self.step] for i in range(0, len(rest), self.step)])


def break_after(limit: int, times: int = 1, error: type[Exception] = ConnectionResetError):
    """A fault (tests.support.streamfaults): the first ``times`` streams raise ``error`` after
    ``limit`` bytes."""
    left = [times]

    def fault(stream: Iterator[bytes], offset: int) -> Iterator[bytes]:
        if left[0] <= 0:
            return stream
        left[0] -= 1

        def broken() -> Iterator[bytes]:
            done = 0
            for chunk in stream:
                if done + len(chunk) > limit:
                    yield chunk[: limit - done]
                    raise error("the stream broke")
                done += len(chunk)
                yield chunk

        return broken()

    return fault
