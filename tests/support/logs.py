"""The log lines a test reads, as the CLI prints them: ``LEVEL:message``."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pytest


def line_of(record: logging.LogRecord) -> str:
    return f"{record.levelname}:{record.getMessage()}"


def lines_of(records: Iterable[logging.LogRecord]) -> list[str]:
    return [line_of(record) for record in records]


class LoggerLines:
    """What caplog heard from one logger (and its children) since this view was made.

    The engine's loggers do not propagate to the root (the CLI prints them with its own
    handler), so caplog's handler is attached to such a logger for as long as the view
    lives; ``close`` takes it off again (the ``log_lines`` fixture does it at teardown).
    """

    def __init__(self, caplog: pytest.LogCaptureFixture, logger: logging.Logger) -> None:
        self._handler = caplog.handler
        self._logger = logger
        self._attached = not logger.propagate and self._handler not in logger.handlers
        if self._attached:
            logger.addHandler(self._handler)
        self._start = len(self._handler.records)

    @property
    def records(self) -> list[logging.LogRecord]:
        name = self._logger.name
        return [
            record
            for record in self._handler.records[self._start :]
            if record.name == name or record.name.startswith(name + ".")
        ]

    @property
    def lines(self) -> list[str]:
        return lines_of(self.records)

    def clear(self) -> None:
        """Forget what was heard so far: ``lines`` starts again from now (``lines`` is a
        new list at each read, so clearing that list would change nothing)."""
        self._start = len(self._handler.records)

    def close(self) -> None:
        if self._attached:
            self._logger.removeHandler(self._handler)
            self._attached = False
