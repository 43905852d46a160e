"""What the thread of a running sync shares with the lease and progress threads."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from glancesync.progress import UploadTracker


@dataclass
class LiveTask:
    """One task this runner reserved, claimed or runs: its progress and its stop flags."""

    region: str
    lease_seconds: float
    tracker: UploadTracker = field(default_factory=UploadTracker)
    cancel: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    claimed: bool = False  # the lease is taken (reserved tasks are not yet claimed)
    stop_message: str | None = None  # set when the service stops: the task's final message
    written: int = -1  # tracker version last stored
    renewed: float = field(default_factory=time.monotonic)  # last renewal that held

    def expired(self) -> bool:
        """No renewal for a whole ``dead_after`` (e.g. the process was frozen): others
        may already have failed the task, so it is treated as lost without asking."""
        return time.monotonic() - self.renewed > self.lease_seconds

    def should_stop(self) -> bool:
        """The core's ``should_cancel``: a cancel request, or a lease this process lost."""
        return self.cancel.is_set() or self.lost.is_set() or self.expired()
