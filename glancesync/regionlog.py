"""The logger of the region being synchronised, for code far below the executor.

Retries, resumed downloads and the clean-up of half images happen inside a backend, which
knows a region's bare name but not the logger of the run: the CLI's ``LEVEL:message``
stream, or with ``--parallel`` the region's own log file. The executor sets the region's
logger here around each action (a context variable, so threads of other regions keep
theirs); the backends send their warnings through :func:`warning`, which falls back to
their module logger when no region is being synchronised (a listing prefetch, a test
calling a backend directly). A master read shared by several regions' uploads (fan-out)
runs with :func:`shared_by` a :class:`SharedLog`: its warnings go to each of those
regions, including the ones that join the read later (their data went through it too).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterable, Iterator

Target = tuple[logging.Logger, str]  # a region's logger and its full name


class SharedLog:
    """The logs of the regions sharing one piece of work. A region that joins late gets
    the warnings already given: the data it takes went through what they describe, so
    its log must say so whatever the timing of its join."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: list[Target] = []
        self._said: list[str] = []

    def join(self, targets: Iterable[Target]) -> None:
        with self._lock:
            new = [target for target in targets if target not in self._targets]
            self._targets.extend(new)
            said = list(self._said)
        for target in new:
            for text in said:
                _emit(target, text)

    def say(self, text: str) -> None:
        with self._lock:
            self._said.append(text)
            targets = list(self._targets)
        for target in targets:
            _emit(target, text)


_CURRENT: contextvars.ContextVar[tuple[Target, ...] | SharedLog] = contextvars.ContextVar(
    "glancesync_region_log", default=()
)


@contextlib.contextmanager
def region_logging(log: logging.Logger, full: str) -> Iterator[None]:
    """Send backend warnings of this thread (and threads it starts with the context
    copied) to ``log``, as ``<full>: <message>`` lines like the executor's own."""
    token = _CURRENT.set(((log, full),))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> tuple[Target, ...]:
    """The region whose log gets this thread's backend warnings (none outside a sync)."""
    targets = _CURRENT.get()
    return () if isinstance(targets, SharedLog) else tuple(targets)


def shared_by(log: SharedLog) -> contextvars.Context:
    """A context to run work shared by several regions in: its warnings go to each region
    of ``log``, now or when it joins."""
    context = contextvars.copy_context()
    context.run(_CURRENT.set, log)
    return context


def warning(fallback: logging.Logger, message: str, *args: object) -> None:
    """Log ``message % args`` as a warning of the current region(s) (each named once at
    the start of its line), else on ``fallback``."""
    targets = _CURRENT.get()
    text = message % args if args else message
    if isinstance(targets, SharedLog):
        targets.say(text)
    elif targets:
        for target in targets:
            _emit(target, text)
    else:
        fallback.warning(message, *args)


def _emit(target: Target, text: str) -> None:
    log, full = target
    prefix = f"{full}: "
    log.warning(text if text.startswith(prefix) else prefix + text)
