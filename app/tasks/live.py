"""What the thread of a running sync shares with the lease and progress threads."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from glancesync.errors import ErrorKind
from glancesync.progress import UploadTracker


def monotonic() -> float:
    """The clock of a runner's own lease (a seam: tests drive it)."""
    return time.monotonic()


@dataclass
class LiveTask:
    """One task this runner reserved, claimed or runs: its progress and its stop flags."""

    region: str
    lease_seconds: float  # the runner's own limit: DEAD_AFTER - 2 x HEARTBEAT_INTERVAL
    tracker: UploadTracker = field(default_factory=UploadTracker)
    cancel: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    claimed: bool = False  # the lease is taken (reserved tasks are not yet claimed)
    stop_message: str | None = None  # set when the service stops: the task's final message
    # the kinds of the errors its sync met (``RegionResult.error_kinds``): the metrics count
    # them, the task stores only the messages
    error_kinds: list[ErrorKind] = field(default_factory=list)
    written: int = -1  # tracker version last stored
    # when the last renewal that held was sent (taken before its statement: the database
    # may have stored its heartbeat any time after that)
    renewed: float = field(default_factory=lambda: monotonic())

    def expired(self) -> bool:
        """No renewal for ``lease_seconds`` (e.g. the process was frozen): the sync stops
        two heartbeat intervals before any other process may judge the task dead, so two
        syncs of the region never overlap; it is treated as lost without asking."""
        return monotonic() - self.renewed > self.lease_seconds

    def should_stop(self) -> bool:
        """The core's ``should_cancel``: a cancel request, or a lease this process lost."""
        return self.cancel.is_set() or self.lost.is_set() or self.expired()
