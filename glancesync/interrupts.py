"""SIGINT and SIGTERM for the command: stop every region cleanly, then exit 130 / 143
(reference 6.10).

The first signal only sets a flag. Every region polls it through the cancel check the
executor already has (between actions and between the chunks of an upload), so an
upload stops within one chunk, its half image is deleted by the backend, and the region
logs ``ERROR:<F>: interrupted by <SIGNAL>; half-uploaded images deleted``. Regions not yet
started are not started. A second signal gives up on the clean stop (``SignalStop``, a
KeyboardInterrupt); what that leaves is removed by the next run (glancesync/leftovers.py).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from glancesync.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalStop(KeyboardInterrupt):
    """Raised by the handler when there is nothing to stop cleanly (or on a second signal)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class Stop:
    """The run's stop flag; calling it is the cancel check (raises once a signal came)."""

    def __init__(self, at_once: bool = False) -> None:
        self.at_once = at_once  # raise SignalStop in the main thread instead of a flag
        self.signum: int | None = None
        self._event = threading.Event()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process the signal ended."""
        return 128 + (self.signum or signal.SIGINT)

    def request(self, signum: int) -> None:
        self.signum = signum
        self._event.set()

    def __call__(self) -> bool:
        if self.signum is not None:
            raise Interrupted(signal.Signals(self.signum).name)
        return False

    def _handle(self, signum: int, frame: object) -> None:
        first = not self.requested
        self.request(signum)
        if self.at_once or not first:
            raise SignalStop(signum)  # second signal: stop waiting for a clean end


@contextlib.contextmanager
def stop_on_signals(at_once: bool = False) -> Iterator[Stop]:
    """Install the handlers for the duration of one command (main thread only; from any
    other thread, the flag is there but nothing sets it). ``at_once``: for the read-only
    modes, a signal raises ``SignalStop`` where the main thread is."""
    stop = Stop(at_once)
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    saved = {signum: signal.signal(signum, stop._handle) for signum in SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
