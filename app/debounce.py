"""Debouncing of master-image events into region syncs (pure logic, no I/O).

A burst of Glance notifications (an upload makes ``image.create``, ``image.upload``,
``image.activate``, then each property edit an ``image.update``) must start one sync per
region, not one per event: a region is due once ``quiet`` seconds have passed without a
new event for it, or ``max_wait`` seconds after its first pending event, so a steady
stream of edits cannot postpone the sync forever. The clock is injected: the tests drive
it by hand, the listener passes ``time.monotonic``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

DEFAULT_QUIET = 2.0
DEFAULT_MAX_WAIT = 10.0


@dataclass
class _Pending:
    first: float
    last: float


class Debouncer:
    """Regions waiting for their sync, with the time of their first and last event."""

    def __init__(
        self,
        quiet: float = DEFAULT_QUIET,
        max_wait: float = DEFAULT_MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet = quiet
        self.max_wait = max(max_wait, quiet)
        self.clock = clock
        self._pending: dict[str, _Pending] = {}

    def add(self, regions: Iterable[str]) -> None:
        """One event concerning these regions: each one's quiet period starts again."""
        now = self.clock()
        for region in regions:
            entry = self._pending.get(region)
            if entry is None:
                self._pending[region] = _Pending(now, now)
            else:
                entry.last = now

    def _due_at(self, entry: _Pending) -> float:
        return min(entry.last + self.quiet, entry.first + self.max_wait)

    def take_due(self) -> list[str]:
        """The regions whose sync should start now (sorted); they are no longer pending."""
        now = self.clock()
        due = sorted(r for r, e in self._pending.items() if self._due_at(e) <= now)
        for region in due:
            del self._pending[region]
        return due

    def next_due(self) -> float | None:
        """Clock time of the next region due, None when nothing is pending."""
        if not self._pending:
            return None
        return min(self._due_at(entry) for entry in self._pending.values())

    def pending(self) -> list[str]:
        return sorted(self._pending)
