"""Upload progress: one line per region on a terminal, silent in pipes and log files; the
service's per-image record (glancesync.progress)."""

from __future__ import annotations

import io
import re

from glancesync.progress import RegionLines, UploadTracker, progress_factory

MB = 1048576


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_progress_when_stderr_is_not_a_terminal():
    assert progress_factory(io.StringIO()) is None


def test_progress_shows_bytes_rate_and_name_on_a_terminal():
    term = FakeTerminal()
    lines = progress_factory(term)
    assert isinstance(lines, RegionLines)
    advance = lines("Burgos", "img05", 4 * MB)
    for _ in range(4):
        advance(MB)
    shown = term.getvalue()
    assert "Burgos: img05" in shown
    assert "4.00M" in shown
    assert "B/s" in shown


def test_one_line_per_region_totals_its_uploads():
    term = FakeTerminal()
    lines = progress_factory(term)
    assert lines is not None
    lines.planned("Burgos", 3 * MB)
    lines("Burgos", "img01", MB)(MB)
    lines("Burgos", "img02", 2 * MB)(MB)
    lines._lines["Burgos"].bar.refresh()  # tqdm redraws at most every 0.1 s on its own
    shown = term.getvalue().rsplit("\r", 1)[-1]
    assert "Burgos: img02" in shown
    # one bar for the region: 2 of its 3 planned MB, not "1.00M/2.00M" of the second upload
    assert re.search(r"2\.00M/3\.00M", shown), shown


def test_parallel_regions_get_their_own_line_and_an_ended_line_is_reused():
    lines = RegionLines(FakeTerminal())
    lines.planned("Burgos", MB)
    lines.planned("Caceres", MB)
    slots = {region: line.slot for region, line in lines._lines.items()}
    assert slots == {"Burgos": 0, "Caceres": 1}
    lines.ended("Burgos", None)
    lines.planned("Soria", MB)
    assert lines._lines["Soria"].slot == 0  # sequential runs keep to one line
    lines.ended("Caceres", "img01")
    lines.ended("Soria", None)
    assert lines._lines == {}


def test_without_a_plan_the_region_total_grows_with_each_upload():
    term = FakeTerminal()
    lines = RegionLines(term)
    lines("Burgos", "img01", MB)(MB)
    lines("Burgos", "img02", MB)
    assert lines._lines["Burgos"].bar.total == 2 * MB


# -- the service's tracker -----------------------------------------------------------------
def test_tracker_reports_bytes_rate_and_state_per_image_and_region():
    clock = Clock()
    tracker = UploadTracker(clock=clock)
    tracker.planned("Burgos", 3 * MB)
    advance = tracker("Burgos", "img01", MB)
    for _ in range(4):
        clock.now += 0.5
        advance(MB // 4)
    tracker("Burgos", "img02", 2 * MB)(MB)
    snap = tracker.snapshot()
    first, second = snap["images"]
    assert first == {
        "name": "img01",
        "region": "Burgos",
        "bytesDone": MB,
        "bytesTotal": MB,
        "rate": round(MB / 2.0, 1),  # average once done
        "state": "done",  # the region started its next upload
    }
    assert second["state"] == "uploading" and second["bytesDone"] == MB
    assert snap["bytesDone"] == 2 * MB and snap["bytesTotal"] == 3 * MB


def test_tracker_rate_is_smoothed_and_ignores_short_bursts():
    clock = Clock()
    tracker = UploadTracker(clock=clock)
    advance = tracker("Burgos", "img01", 100 * MB)
    clock.now += 0.1
    advance(MB)
    assert tracker.snapshot()["images"][0]["rate"] == 0  # under RATE_SPAN: no sample yet
    clock.now += 0.9
    advance(MB)
    assert tracker.snapshot()["images"][0]["rate"] == 2 * MB
    clock.now += 1
    advance(4 * MB)
    rate = tracker.snapshot()["images"][0]["rate"]
    assert 2 * MB < rate < 4 * MB


def test_tracker_marks_the_failed_upload_and_counts_versions():
    tracker = UploadTracker(clock=Clock())
    before = tracker.version
    tracker("Burgos", "img01", MB)(MB // 2)
    tracker("other:Madrid", "img01", MB)(MB)
    tracker.ended("Burgos", "img01")
    tracker.ended("other:Madrid", None)
    states = {(i["region"], i["state"]) for i in tracker.snapshot()["images"]}
    assert states == {("Burgos", "failed"), ("other:Madrid", "done")}
    assert tracker.version > before


def test_fail_unfinished_leaves_finished_uploads_alone():
    tracker = UploadTracker(clock=Clock())
    tracker("Burgos", "img01", MB)(MB)
    tracker.ended("Burgos", None)
    tracker("Caceres", "img01", MB)
    tracker.fail_unfinished()
    assert [i["state"] for i in tracker.snapshot()["images"]] == ["done", "failed"]
