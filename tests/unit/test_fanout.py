"""Fan-out of one master read to several uploads, each at its own pace (glancesync.fanout)."""

from __future__ import annotations

import errno
import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from glancesync.errors import BackendError
from glancesync.fanout import Broadcast, ConsumerClosed, FanOut
from glancesync.image import Image
from glancesync.spool import RingSpool

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


def test_a_slow_consumer_does_not_hold_the_fast_one():
    source = FakeSource(n=30)
    broadcast = Broadcast(source, 2, buffer_bytes=2 * CHUNK, hash_algo="sha512").start()
    fast, slow = broadcast.consumers
    slow_chunks = slow.chunks()
    first = next(slow_chunks)  # the slow region took one chunk, then its link stalls
    with ThreadPoolExecutor(max_workers=1) as pool:
        # in lock-step the fast region could never pass the slow one's buffer: this hangs
        assert pool.submit(lambda: b"".join(fast.chunks())).result(timeout=10) == source.data
    assert broadcast.peak_lag >= 28 * CHUNK  # the spool held what the slow one had not read
    assert first + b"".join(slow_chunks) == source.data
    assert source.calls == 1
    assert slow_chunks.hashes.md5.hexdigest() == hashlib.md5(source.data).hexdigest()


def test_the_reader_runs_at_the_pace_of_the_fastest_consumer():
    source = FakeSource(n=100)
    window = 3 * CHUNK
    broadcast = Broadcast(source, 2, buffer_bytes=window).start()
    fast = broadcast.consumers[0].chunks()
    taken = [next(fast) for _ in range(2)]  # and the other consumer reads nothing
    time.sleep(0.05)  # give the reader every chance to run ahead
    # the read-ahead, plus the chunk the reader holds while it waits for room
    assert source.bytes_read <= len(taken) * CHUNK + window + CHUNK
    for consumer in broadcast.consumers:
        consumer.close()
    assert broadcast.done.wait(5)


def test_chunks_come_whole_and_in_order():
    source = FakeSource(n=12)
    broadcast = Broadcast(source, 3, buffer_bytes=5 * CHUNK).start()
    with ThreadPoolExecutor(max_workers=3) as pool:
        lists = list(pool.map(lambda c: list(c.chunks()), broadcast.consumers))
    expected = [i.to_bytes(4, "big") * (CHUNK // 4) for i in range(12)]
    assert lists == [expected] * 3


def test_a_laggard_past_the_spool_cap_reads_the_master_itself():
    source, again = FakeSource(n=30), FakeSource(n=30)
    broadcast = Broadcast(
        source,
        2,
        buffer_bytes=2 * CHUNK,
        spool_bytes=5 * CHUNK,
        reopen=lambda: again,
        hash_algo="sha512",
    ).start()
    fast, slow = broadcast.consumers
    slow_chunks = slow.chunks()
    head = next(slow_chunks) + next(slow_chunks)
    assert b"".join(fast.chunks()) == source.data  # never held by the laggard
    assert slow.detached and again.calls == 0  # detached, but nothing re-read yet
    rest = b"".join(slow_chunks)
    assert head + rest == source.data
    assert (source.calls, again.calls) == (1, 1)
    # its own read is hashed whole by itself: the shared hashes are not its bytes any more
    assert slow_chunks.hashes.md5.hexdigest() == hashlib.md5(source.data).hexdigest()
    assert slow_chunks.hashes.md5 is not broadcast.hashes.md5
    assert broadcast.peak_lag <= 5 * CHUNK
    assert broadcast.spool.closed


def test_a_stalled_consumer_costs_no_master_read():
    source = FakeSource(n=30)
    opened = []
    broadcast = Broadcast(
        source, 2, spool_bytes=4 * CHUNK, reopen=lambda: opened.append(1) or FakeSource(30)
    ).start()
    fast, stalled = broadcast.consumers
    stalled_chunks = stalled.chunks()
    next(stalled_chunks)  # then its upload hangs until its own timeout
    assert b"".join(fast.chunks()) == source.data
    assert stalled.detached and not opened
    stalled.close()  # its upload timed out
    assert broadcast.spool.closed


def test_the_spool_file_has_no_name_and_is_closed_at_the_end(tmp_path):
    source = FakeSource(n=20)
    broadcast = Broadcast(source, 2, spool_dir=str(tmp_path)).start()
    first, second = (c.chunks() for c in broadcast.consumers)
    next(first)
    assert list(tmp_path.iterdir()) == []  # nothing a crash could leave behind
    assert not broadcast.spool.closed
    assert b"".join(second) and b"".join(first)
    assert broadcast.done.wait(5)
    assert broadcast.spool.closed


def test_the_spool_is_closed_when_the_master_read_fails():
    source = FakeSource(n=10, fail_at=5)
    broadcast = Broadcast(source, 2).start()
    for consumer in broadcast.consumers:
        with pytest.raises(OSError, match="disk gone"):
            b"".join(consumer.chunks())
    assert broadcast.done.wait(5) and broadcast.spool.closed


def test_the_spool_is_closed_when_every_consumer_is_cancelled():
    source = FakeSource(n=1000)
    broadcast = Broadcast(source, 2, buffer_bytes=2 * CHUNK).start()
    streams = [c.chunks() for c in broadcast.consumers]
    for stream in streams:
        next(stream)
    for consumer in broadcast.consumers:
        consumer.close()  # e.g. FanOut.withdraw of a cancelled region
    with pytest.raises(ConsumerClosed):
        next(streams[0])
    assert broadcast.done.wait(5) and broadcast.spool.closed
    assert source.bytes_read < source.size


def test_a_spool_that_cannot_be_written_sends_everyone_to_their_own_read(monkeypatch):
    real_write = RingSpool.write

    def disk_full_after_three(self, offset, data):
        if offset >= 3 * CHUNK:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, offset, data)

    monkeypatch.setattr(RingSpool, "write", disk_full_after_three)
    source = FakeSource(n=10)
    again = []
    broadcast = Broadcast(
        source, 2, reopen=lambda: again.append(FakeSource(10)) or again[-1]
    ).start()
    assert read_all(broadcast.consumers) == [source.data] * 2
    assert len(again) == 2 and broadcast.spool.closed


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


def test_a_region_joins_a_read_in_progress_while_the_spool_holds_its_start():
    opener = Opener(n=20)
    fanout = FanOut(opener, join_timeout=30, spool_bytes=25 * CHUNK)
    fanout.expect("img", {"A", "B"})
    a = fanout.source_for("A", master()).chunks()  # A starts at once: nobody is waited for
    head = b"".join(next(a) for _ in range(8))
    b = fanout.source_for("B", master())
    assert read_all([b]) == [FakeSource(20).data]
    assert head + b"".join(a) == FakeSource(20).data
    stats = fanout.stats()
    assert (stats.reads, stats.fallbacks, stats.bytes_read) == ({"img": 1}, 0, 20 * CHUNK)


def test_a_region_later_than_the_spool_reads_on_its_own():
    opener = Opener(n=20)
    fanout = FanOut(opener, join_timeout=30, spool_bytes=5 * CHUNK)
    fanout.expect("img", {"A", "B", "C"})
    fanout.defer("C")
    assert b"".join(fanout.source_for("A", master()).chunks()) == FakeSource(20).data
    fanout.activate("C")
    assert b"".join(fanout.source_for("C", master()).chunks()) == FakeSource(20).data
    assert b"".join(fanout.source_for("D", master()).chunks()) == FakeSource(20).data  # unexpected
    assert opener.reads == 3
    assert fanout.stats().fallbacks == 2


def test_a_complete_image_stays_in_the_spool_for_the_regions_still_expected():
    opener = Opener(n=10)
    fanout = FanOut(opener, join_timeout=30)
    fanout.expect("img", {"A", "B"})
    assert b"".join(fanout.source_for("A", master()).chunks()) == FakeSource().data
    fanout.withdraw("A")
    assert b"".join(fanout.source_for("B", master()).chunks()) == FakeSource().data
    fanout.withdraw("B")
    assert opener.reads == 1
    (broadcast,) = fanout._broadcasts
    assert broadcast.spool.closed


def test_a_paused_reader_gives_up_on_absent_regions_after_the_join_timeout():
    opener = Opener(n=50)
    fanout = FanOut(opener, join_timeout=0.05, buffer_bytes=2 * CHUNK)
    fanout.expect("img", {"A", "B"})
    a = fanout.source_for("A", master()).chunks()
    next(a)
    a.close()  # A's upload failed; B has not come yet
    (broadcast,) = fanout._broadcasts
    assert broadcast.done.wait(5)
    assert broadcast.spool.closed and opener.opened[0].bytes_read < 50 * CHUNK
    assert b"".join(fanout.source_for("B", master()).chunks()) == FakeSource(50).data
    assert fanout.stats().fallbacks == 1


def test_a_withdrawn_region_fails_alone_and_frees_the_spool():
    opener = Opener(n=30)
    fanout = FanOut(opener, join_timeout=30, buffer_bytes=2 * CHUNK)
    fanout.expect("img", {"A", "B"})
    a = fanout.source_for("A", master()).chunks()
    b = fanout.source_for("B", master()).chunks()
    next(a)
    fanout.withdraw("A")  # A was cancelled
    with pytest.raises(ConsumerClosed):
        next(a)
    assert b"".join(b) == FakeSource(30).data
    fanout.withdraw("B")
    (broadcast,) = fanout._broadcasts
    assert broadcast.done.wait(5) and broadcast.spool.closed
    assert opener.reads == 1


def test_no_wait_for_a_region_that_has_not_come():
    opener = Opener()
    fanout = FanOut(opener, join_timeout=30)
    fanout.expect("img", {"A", "B"})
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


def test_without_a_usable_spool_folder_every_region_reads_on_its_own(tmp_path):
    opener = Opener(n=5)
    fanout = FanOut(opener, join_timeout=30, spool_dir=str(tmp_path / "missing"))
    fanout.expect("img", {"A", "B"})
    assert join_all(fanout, ["A", "B"], master()) == [FakeSource(5).data] * 2
    assert opener.reads == 2


def test_a_region_planned_after_the_read_started_still_joins_it():
    """The interface for planning each region when it starts: ``expect`` may come after
    the image's read began; the region joins it while the spool holds the start."""
    opener = Opener(n=20)
    fanout = FanOut(opener, join_timeout=30)
    fanout.expect("img", {"A"})
    a = fanout.source_for("A", master()).chunks()
    head = next(a)
    fanout.expect("img", {"B"})  # B was planned only now
    assert b"".join(fanout.source_for("B", master()).chunks()) == FakeSource(20).data
    assert head + b"".join(a) == FakeSource(20).data
    assert opener.reads == 1


def test_a_region_past_an_image_in_its_planned_order_is_not_waited_for():
    """The plan, not (size, name), tells which images a region will still ask for: B's
    plan uploads the big image first, so once B asks for the small one, the paused
    reader of the big one stops at once (no 30 s join timeout)."""
    opener = Opener(n=50)
    fanout = FanOut(opener, join_timeout=30, buffer_bytes=2 * CHUNK)
    big, small = master("big", size=50 * CHUNK), master("small", size=CHUNK)
    for region in ("A", "B"):
        fanout.plan(region, ["big", "small"])
    fanout.expect("big", {"A", "B"})
    a = fanout.source_for("A", big).chunks()
    next(a)
    a.close()  # A's upload failed; B has not come to the big image
    (broadcast,) = fanout._broadcasts
    assert not broadcast.done.wait(0.2)  # paused: B may still join
    fanout.source_for("B", small)  # B skipped the big image (e.g. its upload was dropped)
    assert broadcast.done.wait(5) and broadcast.spool.closed
