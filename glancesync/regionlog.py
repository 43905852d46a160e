"""The logger of the region being synchronised, for code far below the executor.

Retries, resumed downloads and the clean-up of half images happen inside a backend, which
knows a region's bare name but not the logger of the run: the CLI's ``LEVEL:message``
stream, or with ``--parallel`` the region's own log file. The executor sets the region's
logger here around each action (a context variable, so threads of other regions keep
theirs); the backends send their warnings through :func:`warning`, which falls back to
their module logger when no region is being synchronised (a listing prefetch, a shared
fan-out read, a test calling a backend directly).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

_CURRENT: contextvars.ContextVar[tuple[logging.Logger, str] | None] = contextvars.ContextVar(
    "glancesync_region_log", default=None
)


@contextlib.contextmanager
def region_logging(log: logging.Logger, full: str) -> Iterator[None]:
    """Send backend warnings of this thread (and threads it starts with the context
    copied) to ``log``, as ``<full>: <message>`` lines like the executor's own."""
    token = _CURRENT.set((log, full))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def warning(fallback: logging.Logger, message: str, *args: object) -> None:
    """Log ``message % args`` as a warning of the current region (named once at the
    start of the line), else on ``fallback``."""
    current = _CURRENT.get()
    if current is None:
        fallback.warning(message, *args)
        return
    log, full = current
    text = message % args if args else message
    prefix = f"{full}: "
    log.warning(text if text.startswith(prefix) else prefix + text)
