"""Logging of the service: the operator's fiware-glancesync-logging.cfg, else the packaged
one (INFO to stderr, for journald and containers), each line with the request, task and
region it concerns.

A missing logging file is not an error (the packaged defaults apply); a broken one is a
settings error, as before. The task runner names the task a thread works on with
``log_context``; a request's lines carry its ``X-Openstack-Request-Id`` (``request_context``,
set by ``app.edges``). Each record is stamped when it is made (``stamp_records``), so a
handler that formats later, in another thread, still names the right request;
``ContextFormatter`` (usable from any logging file) prints them.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.settings import SettingsError

DEFAULT_LOGGING_FILE = str(Path(__file__).with_name("fiware-glancesync-logging.cfg"))
_CONTEXT: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "glancesync_log_context", default=("-", "-")
)
_REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("glancesync_request_id", default="-")
_FACTORY_LOCK = threading.Lock()


@contextmanager
def request_context(request_id: str) -> Iterator[None]:
    """Lines logged inside the block name ``request_id``."""
    token = _REQUEST.set(request_id)
    try:
        yield
    finally:
        _REQUEST.reset(token)


def set_request_id(request_id: str) -> contextvars.Token:
    """For hooks that cannot wrap a block (before/teardown request): reset with the token."""
    return _REQUEST.set(request_id)


def reset_request_id(token: contextvars.Token) -> None:
    _REQUEST.reset(token)


def current_request_id() -> str:
    return _REQUEST.get()


def stamp_records() -> None:
    """Every record made from now on carries ``request_id``, ``task_id`` and ``region`` of
    the context it was logged in (idempotent)."""
    with _FACTORY_LOCK:
        previous = logging.getLogRecordFactory()
        if getattr(previous, "glancesync_stamps", False):
            return

        def factory(*args, **kwargs) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            record.request_id = _REQUEST.get()
            record.task_id, record.region = _CONTEXT.get()
            return record

        factory.glancesync_stamps = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)


@contextmanager
def log_context(task_id: str | None, region: str | None) -> Iterator[None]:
    """Lines logged inside the block (this thread or task) name ``task_id`` and ``region``."""
    token = _CONTEXT.set((task_id or "-", region or "-"))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class ContextFormatter(logging.Formatter):
    """Fills ``%(request_id)s``, ``%(task_id)s`` and ``%(region)s`` from the record (its
    ``extra`` or its stamp) or the context, so a format using them never fails on a line
    logged outside any request or task."""

    def format(self, record: logging.LogRecord) -> str:
        task_id, region = _CONTEXT.get()
        if not hasattr(record, "request_id"):
            record.request_id = _REQUEST.get()
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
