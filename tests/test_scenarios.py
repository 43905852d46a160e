"""Replays every scenario of tests/scenarios through the mock (reference 9)."""

from __future__ import annotations

import csv
import os
import re

import pytest

from glancesync import report
from glancesync.backends.csvfile import backup_properties, read_backup
from glancesync.backends.mock import MockStore
from glancesync.engine import GlanceSync
from glancesync.result import RegionResult
from tests.support.scenarios import ROOT, SCENARIOS, load_scenario


def status_text(gs: GlanceSync, region: str) -> str:
    statuses = gs.region_statuses(region).images
    return report.status_lines(gs.full_name(region), statuses)


def expected_status(name: str, kind: str, region: str) -> str:
    return (ROOT / f"{name}.{kind}" / f"{region}.csv").read_text()


def store_contents(store: MockStore) -> dict[tuple[str, str], tuple]:
    """Every image keyed by (region, id), as its nine CSV fields."""
    snapshot = store.snapshot()
    return {(region, img.id): _fields(img) for region, images in snapshot.items() for img in images}


def expected_contents(name: str) -> dict[tuple[str, str], tuple]:
    contents = {}
    for path in sorted((ROOT / f"{name}.result").glob("backup_*.csv")):
        region, images = read_backup(str(path))
        contents.update({(region, img.id): _fields(img) for img in images})
    return contents


def _fields(img) -> tuple:
    return (
        img.region,
        img.name,
        img.id,
        img.status,
        img.size,
        img.checksum or "",
        img.owner or "",
        img.is_public,
        backup_properties(img),
    )


# The time every rename of a scenario writes in glancesync_renamed_at (.result files).
RENAMED_AT = "2026-12-01T00:00:00Z"


@pytest.fixture(autouse=True)
def _renamed_at(monkeypatch):
    monkeypatch.setattr("glancesync.executor.renamed_now", lambda: RENAMED_AT)


def outcome_rows(result: RegionResult) -> list[list[str]]:
    """A region's result as the rows of ``S.outcome/<F>.csv``: the failed flag, then the
    summary line (or the error of a failed region), then one row per image result."""
    rows = [["failed", str(result.failed)]]
    rows.append(["error", result.error] if result.failed else ["summary", result.summary])
    for e in result.images:
        rows.append([e.name, e.statusBefore or "", e.action, e.result, e.error or ""])
    return rows


def expected_log(name: str, region: str) -> list[str] | None:
    """Lines of ``S.log/<F>.txt`` (optional) that the region's sync must log, in order."""
    path = ROOT / f"{name}.log" / f"{region}.txt"
    return path.read_text().splitlines() if path.exists() else None


def in_order(expected: list[str], lines: list[str]) -> bool:
    remaining = iter(lines)
    return all(any(line == want for line in remaining) for want in expected)


def expected_outcome(name: str, region: str) -> list[list[str]]:
    with open(ROOT / f"{name}.outcome" / f"{region}.csv", newline="") as handle:
        return [row for row in csv.reader(handle) if row]


@pytest.mark.parametrize("name", SCENARIOS)
def test_status_before(name):
    gs, _, regions = load_scenario(name)
    for region in regions:
        assert status_text(gs, region) == expected_status(name, "status_pre", region), region


@pytest.mark.parametrize("name", [s for s in SCENARIOS if (ROOT / f"{s}.result").is_dir()])
def test_sync_result_and_status_after(name, log_lines):
    gs, store, regions = load_scenario(name)
    for region in regions:
        logged = log_lines(gs.log)
        result = gs.sync_region(region)
        assert outcome_rows(result) == expected_outcome(name, region), region
        wanted = expected_log(name, region)
        assert wanted is None or in_order(wanted, logged.lines), (region, logged.lines)
    assert store_contents(store) == expected_contents(name)
    for region in regions:
        assert status_text(gs, region) == expected_status(name, "status_post", region), region
    # A second run changes nothing.
    before = store_contents(store)
    for region in regions:
        gs.sync_region(region)
    assert store_contents(store) == before


def dry_run_rows(expected: list[list[str]]) -> list[list[str]]:
    """The outcome a dry-run must report for a region whose real sync is ``expected``:
    every action ``planned`` (nothing can fail), never failed, the pending MBs."""
    (_, _), (kind, text) = expected[:2]
    rows = [["failed", "False"]]
    if kind == "summary":
        pending = re.fullmatch(r"(.*):   Total uploaded to region: (\d+) \(MB\) ", text)
        rows.append(["summary", f"{pending[1]}: MBs pending : {pending[2]}" if pending else text])
    else:
        rows.append(["summary", "<MBs of the uploads a failed run did not reach>"])
    for name, before, action, result, _ in expected[2:]:
        planned = result in ("done", "failed", "not_run", "deleted (keep_old)")
        rows.append([name, before, action, "planned" if planned else result, ""])
    return rows


@pytest.mark.parametrize("name", [s for s in SCENARIOS if (ROOT / f"{s}.result").is_dir()])
def test_dry_run_plans_what_the_sync_does_and_writes_nothing(name):
    gs, store, regions = load_scenario(name)
    before = store_contents(store)
    for region in regions:
        got = outcome_rows(gs.sync_region(region, dry_run=True))
        wanted = dry_run_rows(expected_outcome(name, region))
        if expected_outcome(name, region)[0] == ["failed", "False"]:
            assert got == wanted, region
        else:  # the real run failed: its MB total is not known, the rows are
            assert got[0] == wanted[0] and got[2:] == wanted[2:], region
    assert store_contents(store) == before


def test_every_scenario_has_expectations():
    assert len(SCENARIOS) >= 8
    for name in SCENARIOS:
        assert (ROOT / f"{name}.status_pre").is_dir(), name
        assert os.listdir(ROOT / f"{name}.status_pre"), name
        if (ROOT / f"{name}.result").is_dir():
            outcomes = sorted(os.listdir(ROOT / f"{name}.outcome"))
            assert outcomes == sorted(os.listdir(ROOT / f"{name}.status_pre")), name
