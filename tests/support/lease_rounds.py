"""Wait for a runner's lease loop to go round, rather than sleep for its interval.

A test that asserts what the lease loop did NOT do (claim a task, fail a live one) must
let whole rounds pass first; counting them is exact on a loaded machine, where a sleep of
"two intervals" may see no round at all.
"""

from __future__ import annotations

import threading

import pytest

from app.tasks import TaskRunner
from tests.support.waiting import wait_until


class LeaseRounds:
    """Counts the ends of ``runner``'s lease loop rounds (from when it was made).

    ``claim_queued`` is a round's last step (renew, sweep, claim), and one thread runs the
    rounds one after the other: of two rounds that end after a moment, the second began
    after it, so it renewed, swept and claimed with all that was written before.
    """

    def __init__(self, runner: TaskRunner, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self._lock = threading.Lock()
        original = runner.claim_queued

        def counted() -> None:
            try:
                original()
            finally:
                with self._lock:
                    self.count += 1

        monkeypatch.setattr(runner, "claim_queued", counted)

    def wait(self, rounds: int = 2, timeout: float = 30) -> None:
        """Return once ``rounds`` more rounds ended: ``rounds - 1`` whole rounds began
        after this call."""
        target = self.count + rounds
        wait_until(lambda: self.count >= target, timeout, step=0.01, what=f"{rounds} rounds")
