"""Upload progress: drawn on a terminal, silent in pipes and log files."""

from __future__ import annotations

import io

from glancesync.progress import progress_factory


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_progress_when_stderr_is_not_a_terminal():
    assert progress_factory(io.StringIO()) is None


def test_progress_shows_bytes_rate_and_name_on_a_terminal():
    term = FakeTerminal()
    start = progress_factory(term)
    advance = start("Burgos", "img05", 4 * 1048576)
    for _ in range(4):
        advance(1048576)
    shown = term.getvalue()
    assert "Burgos: img05" in shown
    assert "4.00M" in shown
    assert "B/s" in shown
