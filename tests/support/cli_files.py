"""What the CLI tests give glancesync (the basic configuration, the scenarios' stores) and
how its one-line errors look."""

from __future__ import annotations

from pathlib import Path

from tests.support.scenarios import ROOT as SCENARIOS

BASIC_CONFIG = (Path(__file__).resolve().parents[1] / "cli" / "basic.conf").read_text()

__all__ = ["BASIC_CONFIG", "SCENARIOS", "assert_one_line_error"]


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    """A usage or settings error: exit 2, nothing on stdout, one ``ERROR:`` line holding
    every fragment, no traceback."""
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ERROR: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]
