"""Retry, resume and clean-up warnings reach the region's own logger (issue 11, item 6).

They happen deep in the real backend, which only knows a region's bare name. The CLI
shows them as ``WARNING:<F>: ...`` lines like every other line of the region, and with
``--parallel`` they land in the region's log file, not on the terminal.
"""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from keystoneauth1 import exceptions as ksa

from glancesync import planner as pl
from glancesync import regionlog
from glancesync.backends.glance_data import ApiSource
from glancesync.executor import Executor
from glancesync.fanout import FanOut
from glancesync.image import Image
from glancesync.parallel import close_logger, region_logger
from glancesync.planner import Action, Plan
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
from tests.support.logs import LoggerLines
from tests.support.streamfaults import with_fault


def sync_one_upload(log: logging.Logger) -> None:
    """One upload to Trento whose first try is reset (its half image cannot be deleted
    at once) and whose master stream breaks after 4321 bytes on each try."""
    images = FakeImages()
    images.upload_faults = [reset()]
    images.delete_faults = [ksa.ConnectFailure("connection refused")] * FAST.attempts
    master = master_image()
    plan = Plan("Trento", [], [Action(pl.UPLOAD, master.name, master, None, True, {})])

    def source_for(image):
        return ApiSource(
            with_fault(RangeServer(), break_after(4321, times=2)), "m-1", len(DATA), FAST
        )

    result = Executor(plan, fake_backend(images), "Trento", {}, log, False, source_for).run()
    assert not result.failed, result.error


def region_log(log_lines, name: str) -> tuple[logging.Logger, LoggerLines]:
    log = logging.getLogger(f"test-region-log.{name}")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.handlers = []
    return log, log_lines(log)


EXPECTED = [
    r"WARNING:Trento: master image m-1: stream broke after 4321 bytes \(.*\); resuming",
    r"WARNING:Trento: could not delete the half-uploaded image id-1: .*",
    r"WARNING:Trento: upload of cirros failed \(attempt 1\): .*; retrying in 0\.0 s",
]


def test_backend_warnings_go_to_the_region_logger_with_its_name(caplog, log_lines):
    log, lines = region_log(log_lines, "cli")
    with caplog.at_level(logging.WARNING):
        sync_one_upload(log)
    warnings = [line for line in lines.lines if line.startswith("WARNING:")]
    for pattern in EXPECTED:
        assert any(re.fullmatch(pattern, line) for line in warnings), (pattern, warnings)
    # nothing went around the region's logger (to the glancesync.backends.* loggers)
    assert [r.name for r in caplog.records if r.name.startswith("glancesync.")] == []


def test_parallel_region_file_gets_the_backend_warnings(tmp_path):
    log = region_logger(str(tmp_path), "Trento", 0)
    try:
        sync_one_upload(log)
    finally:
        close_logger(log)
    text = (tmp_path / "Trento.txt").read_text()
    assert re.search(r"^Trento: master image m-1: stream broke after 4321 bytes", text, re.M)
    assert re.search(r"^Trento: could not delete the half-uploaded image id-1", text, re.M)
    assert re.search(r"^Trento: upload of cirros failed \(attempt 1\)", text, re.M)


class ResumingSource:
    """Master data whose read resumes once, as ApiSource does (the warning included);
    ``warned`` is set once the warning is given."""

    def __init__(self, size: int = 4000, warned: threading.Event | None = None):
        self.size = size
        self.warned = warned or threading.Event()

    def chunks(self):
        yield b"a" * 1000
        regionlog.warning(RESUME_LOG, "master image %s: stream broke after %d bytes", "m-1", 1000)
        self.warned.set()
        for _ in range(1, self.size // 1000):
            yield b"a" * 1000


RESUME_LOG = logging.getLogger("glancesync.backends.glance_data")


def test_a_shared_master_read_warns_every_region_that_shares_it(caplog, log_lines):
    """--parallel: regions uploading the same image share one read (fan-out); a resume of
    that read concerns each of them, so each region's log says so — Caceres too, though
    it joins the read only after the warning was given (its data went through it)."""
    warned = threading.Event()
    fanout = FanOut(lambda master: ResumingSource(warned=warned), join_timeout=5.0)
    image = Image(name="cirros", id="m-1", size=4000)
    regions = ["Burgos", "Caceres"]
    fanout.expect(image.id, regions)
    logs = {region: region_log(log_lines, f"fanout.{region}") for region in regions}

    def upload(region: str) -> bytes:
        log, _ = logs[region]
        if region == "Caceres":  # the late joiner: after the shared read warned
            assert warned.wait(10), "the shared read never warned"
        with regionlog.region_logging(log, region):
            return b"".join(fanout.source_for(region, image).chunks())

    with caplog.at_level(logging.WARNING), ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(upload, regions)) == [b"a" * 4000] * 2
    assert fanout.stats().reads == {"m-1": 1}  # really one shared read
    for region, (_, lines) in logs.items():
        assert lines.lines == [
            f"WARNING:{region}: master image m-1: stream broke after 1000 bytes"
        ], region
    assert [r.name for r in caplog.records if r.name.startswith("glancesync.")] == []
