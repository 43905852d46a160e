"""Logging of the service: the operator's fiware-glancesync-logging.cfg, else the packaged
one (INFO to stderr, for journald and containers), each line with the task and region it
concerns.

A missing logging file is not an error (the packaged defaults apply); a broken one is a
settings error, as before. The task runner names the task a thread works on with
``log_context``; ``ContextFormatter`` (usable from any logging file) prints it.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.settings import SettingsError

DEFAULT_LOGGING_FILE = str(Path(__file__).with_name("fiware-glancesync-logging.cfg"))
_CONTEXT: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "glancesync_log_context", default=("-", "-")
)


@contextmanager
def log_context(task_id: str | None, region: str | None) -> Iterator[None]:
    """Lines logged inside the block (this thread or task) name ``task_id`` and ``region``."""
    token = _CONTEXT.set((task_id or "-", region or "-"))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class ContextFormatter(logging.Formatter):
    """Fills ``%(task_id)s`` and ``%(region)s`` from the record's ``extra`` or the context,
    so a format using them never fails on a line logged outside any task."""

    def format(self, record: logging.LogRecord) -> str:
        task_id, region = _CONTEXT.get()
        if not hasattr(record, "task_id"):
            record.task_id = task_id
        if not hasattr(record, "region"):
            record.region = region
        return super().format(record)


def configure_logging(path: str) -> None:
    """fiware-glancesync-logging.cfg (11.4), the packaged one when ``path`` is empty."""
    path = path or DEFAULT_LOGGING_FILE
    try:
        logging.config.fileConfig(path, disable_existing_loggers=False)
    except Exception as exc:  # fileConfig raises KeyError, ValueError, OSError...
        raise SettingsError(
            f"ERROR: Cannot configure logging from {path}: {type(exc).__name__}: {exc}"
        ) from None
