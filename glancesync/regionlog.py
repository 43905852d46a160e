"""The logger of the region being synchronised, for code far below the executor.

Retries, resumed downloads and the clean-up of half images happen inside a backend, which
knows a region's bare name but not the logger of the run: the CLI's ``LEVEL:message``
stream, or with ``--parallel`` the region's own log file. The executor sets the region's
logger here around each action (a context variable, so threads of other regions keep
theirs); the backends send their warnings through :func:`warning`, which falls back to
their module logger when no region is being synchronised (a listing prefetch, a test
calling a backend directly). A master read shared by several regions' uploads (fan-out)
runs with :func:`shared_by`: its warnings go to each of those regions.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

Target = tuple[logging.Logger, str]  # a region's logger and its full name
_CURRENT: contextvars.ContextVar[tuple[Target, ...] | list[Target]] = contextvars.ContextVar(
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
    """The regions whose logs get this thread's backend warnings."""
    return tuple(_CURRENT.get())


def shared_by(targets: list[Target]) -> contextvars.Context:
    """A context to run work shared by several regions in: its warnings go to each. The
    list is kept, not copied: regions that join the work later (a fan-out read already in
    progress) are added to it by the caller."""
    context = contextvars.copy_context()
    context.run(_CURRENT.set, targets)
    return context


def warning(fallback: logging.Logger, message: str, *args: object) -> None:
    """Log ``message % args`` as a warning of the current region(s) (each named once at
    the start of its line), else on ``fallback``."""
    targets = tuple(_CURRENT.get())  # a shared list may grow meanwhile
    if not targets:
        fallback.warning(message, *args)
        return
    text = message % args if args else message
    for log, full in targets:
        prefix = f"{full}: "
        log.warning(text if text.startswith(prefix) else prefix + text)
