"""Fan-out of one master read to several uploads (glancesync.fanout)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from glancesync.errors import BackendError
from glancesync.fanout import Broadcast, FanOut
from glancesync.image import Image

CHUNK = 1000


class FakeSource:
    """N distinct chunks; counts reads (``chunks()`` calls) and bytes handed out."""

    def __init__(self, n: int = 10, fail_at: int | None = None):
        self.n, self.fail_at = n, fail_at
        self.size = n * CHUNK
        self.calls = 0
        self.bytes_read = 0

    def chunks(self) -> Iterator[bytes]:
        self.calls += 1
        for i in range(self.n):
            if i == self.fail_at:
                raise OSError("disk gone")
            self.bytes_read += CHUNK
            yield i.to_bytes(4, "big") * (CHUNK // 4)

    @property
    def data(self) -> bytes:
        return b"".join(i.to_bytes(4, "big") * (CHUNK // 4) for i in range(self.n))


def read_all(sources) -> list[bytes]:
    """Read every source to the end in its own thread, as concurrent uploads do."""
    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        return list(pool.map(lambda s: b"".join(s.chunks()), sources))


def master(image_id: str = "img", size: int = 10 * CHUNK) -> Image:
    return Image(name=f"name-{image_id}", id=image_id, size=size)


# -- Broadcast ----------------------------------------------------------------------------
def test_three_consumers_share_one_read():
    source = FakeSource(n=20)
    broadcast = Broadcast(source, 3, buffer_bytes=4 * CHUNK).start()
    assert read_all(broadcast.consumers) == [source.data] * 3
    assert source.calls == 1
    assert source.bytes_read == broadcast.bytes_read == source.size


def test_slow_consumer_keeps_memory_bounded():
    source = FakeSource(n=30)
    bound = 4 * CHUNK
    broadcast = Broadcast(source, 2, buffer_bytes=bound).start()
    fast, slow = broadcast.consumers
    ahead = []

    def read_slowly() -> bytes:
        received = []
        for chunk in slow.chunks():
            received.append(chunk)
            ahead.append(source.bytes_read - len(received) * CHUNK)
            time.sleep(0.003)
        return b"".join(received)

    with ThreadPoolExecutor(max_workers=2) as pool:
        fast_data = pool.submit(lambda: b"".join(fast.chunks()))
        slow_data = pool.submit(read_slowly)
        assert fast_data.result() == slow_data.result() == source.data
    assert broadcast.peak_buffered <= bound
    # the reader never runs further ahead of the slow reader than its buffer (+ one in hand)
    assert max(ahead) <= bound + CHUNK


def test_a_consumer_that_stops_does_not_stop_the_others():
    source = FakeSource(n=30)
    broadcast = Broadcast(source, 3, buffer_bytes=2 * CHUNK).start()
    quitter = broadcast.consumers[1]

    def read_three_then_quit() -> bytes:
        chunks = quitter.chunks()
        got = b"".join(next(chunks) for _ in range(3))
        chunks.close()  # e.g. its upload failed
        return got

    with ThreadPoolExecutor(max_workers=3) as pool:
        others = [pool.submit(lambda c=c: b"".join(c.chunks())) for c in broadcast.consumers[::2]]
        partial = pool.submit(read_three_then_quit).result()
        assert [f.result() for f in others] == [source.data] * 2
    assert partial == source.data[: 3 * CHUNK]
    assert quitter.detached
    assert source.calls == 1


def test_a_consumer_that_never_reads_but_is_closed_does_not_block():
    source = FakeSource(n=30)
    broadcast = Broadcast(source, 2, buffer_bytes=2 * CHUNK).start()
    reader, idle = broadcast.consumers
    with ThreadPoolExecutor(max_workers=1) as pool:
        data = pool.submit(lambda: b"".join(reader.chunks()))
        idle.close()
        assert data.result(timeout=5) == source.data


def test_reader_stops_when_every_consumer_left():
    source = FakeSource(n=1000)
    broadcast = Broadcast(source, 2, buffer_bytes=2 * CHUNK).start()
    for consumer in broadcast.consumers:
        chunks = consumer.chunks()
        next(chunks)
        chunks.close()
    assert broadcast.done.wait(5)
    assert source.bytes_read < source.size


def test_a_master_read_error_reaches_every_consumer():
    source = FakeSource(n=10, fail_at=5)
    broadcast = Broadcast(source, 3, buffer_bytes=2 * CHUNK).start()

    def read(consumer) -> tuple[int, BaseException | None]:
        got = 0
        try:
            for chunk in consumer.chunks():
                got += len(chunk)
        except OSError as exc:
            return got, exc
        return got, None

    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(read, broadcast.consumers))
    assert [got for got, _ in outcomes] == [5 * CHUNK] * 3
    errors = [exc for _, exc in outcomes]
    assert all(isinstance(e, OSError) and str(e) == "disk gone" for e in errors)
    assert len({id(e) for e in errors}) == 3  # one copy per thread


def test_a_second_read_of_a_consumer_reads_the_master_again():
    source, again = FakeSource(n=3), FakeSource(n=3)
    broadcast = Broadcast(source, 1, reopen=lambda: again).start()
    consumer = broadcast.consumers[0]
    assert b"".join(consumer.chunks()) == source.data
    assert b"".join(consumer.chunks()) == again.data
    assert (source.calls, again.calls) == (1, 1)


# -- FanOut -------------------------------------------------------------------------------
class Opener:
    """``open_source`` for FanOut: a fresh FakeSource per open, all kept for inspection."""

    def __init__(self, n: int = 10):
        self.n = n
        self.opened: list[FakeSource] = []
        self.lock = threading.Lock()

    def __call__(self, image: Image) -> FakeSource:
        source = FakeSource(self.n)
        with self.lock:
            self.opened.append(source)
        return source

    @property
    def reads(self) -> int:
        return sum(s.calls for s in self.opened)


def join_all(fanout: FanOut, regions: list[str], image: Image) -> list[bytes]:
    """Every region asks for ``image`` and reads it, each in its own thread."""
    with ThreadPoolExecutor(max_workers=len(regions)) as pool:
        return list(pool.map(lambda r: b"".join(fanout.source_for(r, image).chunks()), regions))


def test_expected_regions_share_one_read():
    opener = Opener()
    fanout = FanOut(opener, join_timeout=5)
    fanout.expect("img", {"A", "B", "C"})
    assert join_all(fanout, ["A", "B", "C"], master()) == [FakeSource().data] * 3
    assert opener.reads == 1
    stats = fanout.stats()
    assert (stats.reads, stats.fallbacks, stats.bytes_read) == ({"img": 1}, 0, 10 * CHUNK)


def test_a_late_region_falls_back_to_its_own_read():
    opener = Opener()
    fanout = FanOut(opener, join_timeout=30)
    fanout.expect("img", {"A", "B", "C"})
    fanout.defer("C")  # so A and B start without it
    assert join_all(fanout, ["A", "B"], master()) == [FakeSource().data] * 2
    fanout.activate("C")
    assert b"".join(fanout.source_for("C", master()).chunks()) == FakeSource().data
    assert b"".join(fanout.source_for("D", master()).chunks()) == FakeSource().data  # unexpected
    assert opener.reads == 3
    stats = fanout.stats()
    assert (stats.reads, stats.fallbacks, stats.bytes_read) == ({"img": 3}, 2, 30 * CHUNK)


def test_the_join_timeout_starts_a_broadcast_with_the_regions_present():
    opener = Opener()
    fanout = FanOut(opener, join_timeout=0.05)
    fanout.expect("img", {"A", "B"})
    assert b"".join(fanout.source_for("A", master()).chunks()) == FakeSource().data
    assert b"".join(fanout.source_for("B", master()).chunks()) == FakeSource().data
    assert fanout.stats().fallbacks == 1


def test_withdraw_releases_a_waiting_broadcast():
    opener = Opener()
    fanout = FanOut(opener, join_timeout=30)
    fanout.expect("img", {"A", "B", "C"})
    with ThreadPoolExecutor(max_workers=2) as pool:
        sources = [pool.submit(fanout.source_for, r, master()) for r in ("A", "B")]
        time.sleep(0.05)
        assert not any(f.done() for f in sources)  # both wait for C
        fanout.withdraw("C")
        consumers = [f.result(timeout=5) for f in sources]
    assert read_all(consumers) == [FakeSource().data] * 2
    assert opener.reads == 1


def test_no_wait_for_a_region_already_past_the_image():
    opener = Opener()
    fanout = FanOut(opener, join_timeout=30)
    small, large = master("small", 1), master("large", 2)
    fanout.expect("small", {"A", "B"})
    fanout.expect("large", {"A", "B"})
    with ThreadPoolExecutor(max_workers=1) as pool:
        b_large = pool.submit(fanout.source_for, "B", large)  # B skipped "small"
        a_small = fanout.source_for("A", small)  # must not wait for B
        assert b"".join(a_small.chunks()) == FakeSource().data
        a_large = fanout.source_for("A", large)
        assert read_all([a_large, b_large.result(timeout=5)]) == [FakeSource().data] * 2
    assert fanout.stats().reads == {"small": 1, "large": 1}


def test_no_wait_for_a_deferred_region():
    opener = Opener()
    fanout = FanOut(opener, join_timeout=30)
    fanout.expect("img", {"A", "B"})
    fanout.defer("B")  # queued behind a busy worker pool
    assert b"".join(fanout.source_for("A", master()).chunks()) == FakeSource().data


def test_asking_for_the_next_source_releases_an_unread_one():
    opener = Opener(n=50)
    fanout = FanOut(opener, join_timeout=30, buffer_bytes=2 * CHUNK)
    fanout.expect("img", {"A", "B"})
    with ThreadPoolExecutor(max_workers=1) as pool:
        b_source = pool.submit(fanout.source_for, "B", master())
        fanout.source_for("A", master())  # A's backend never reads it...
        fanout.source_for("A", master("other"))  # ...and A moves on
        assert b"".join(b_source.result(timeout=5).chunks()) == FakeSource(50).data


def test_an_open_error_reaches_every_joined_region():
    def broken(image: Image):
        raise BackendError(f"Valladolid: Cannot open the image {image.name} to upload. Cause: x")

    fanout = FanOut(broken, join_timeout=30)
    fanout.expect("img", {"A", "B"})
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(fanout.source_for, r, master()) for r in ("A", "B")]
        for future in futures:
            with pytest.raises(BackendError, match="Cannot open the image name-img"):
                future.result(timeout=5)
