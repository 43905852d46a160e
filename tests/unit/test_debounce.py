"""Debouncing of master events into region syncs, on a clock driven by hand (issue 17)."""

from __future__ import annotations

import pytest

from app.debounce import Debouncer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(events: list[tuple[float, list[str]]], until: float, quiet: float, max_wait: float):
    """Feed ``(time, regions)`` events, polling every 0.1 s; returns ``(time, due)`` firings."""
    clock = Clock()
    debouncer = Debouncer(quiet, max_wait, clock)
    pending = sorted(events, key=lambda e: e[0])
    fired = []
    for step in range(int(until * 10) + 1):
        clock.now = round(step * 0.1, 1)
        while pending and pending[0][0] <= clock.now:
            debouncer.add(pending.pop(0)[1])
        due = debouncer.take_due()
        if due:
            fired.append((clock.now, due))
    return fired


@pytest.mark.parametrize(
    ("events", "quiet", "max_wait", "expected"),
    [
        # one event: due after the quiet period
        ([(0.0, ["A", "B"])], 2, 10, [(2.0, ["A", "B"])]),
        # a burst of ten events 0.5 s apart: one firing, QUIET after the last one
        ([(i * 0.5, ["A"]) for i in range(10)], 2, 10, [(6.5, ["A"])]),
        # a stream that never goes quiet: MAX_WAIT after the first event, then again
        (
            [(i * 1.0, ["A"]) for i in range(16)],
            2,
            10,
            [(10.0, ["A"]), (17.0, ["A"])],
        ),
        # regions are timed apart: B's late event does not delay A
        ([(0.0, ["A"]), (1.5, ["B"])], 2, 10, [(2.0, ["A"]), (3.5, ["B"])]),
        # a region already pending keeps its first time: MAX_WAIT counts from there
        ([(0.0, ["A"]), (1.0, ["A", "B"]), (2.5, ["A", "B"])], 2, 3, [(3.0, ["A"]), (4.0, ["B"])]),
        # nothing happens without events
        ([], 2, 10, []),
        # an event with no region (irrelevant change) schedules nothing
        ([(0.0, [])], 2, 10, []),
        # MAX_WAIT below QUIET is raised to QUIET
        ([(0.0, ["A"])], 2, 1, [(2.0, ["A"])]),
    ],
)
def test_debounced_firings(events, quiet, max_wait, expected):
    assert run(events, 20, quiet, max_wait) == expected


def test_next_due_says_when_to_wake_up():
    clock = Clock()
    debouncer = Debouncer(2, 10, clock)
    assert debouncer.next_due() is None
    debouncer.add(["A"])
    clock.now = 1.0
    debouncer.add(["B"])
    assert debouncer.next_due() == 2.0
    assert debouncer.pending() == ["A", "B"]
    clock.now = 2.0
    assert debouncer.take_due() == ["A"]
    assert debouncer.next_due() == 3.0
