"""Fixtures every kind of test may use (unit, CLI, API, integration)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from tests.support.logs import LoggerLines


@pytest.fixture
def log_lines(
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Callable[[logging.Logger], LoggerLines]]:
    """Factory: the ``LEVEL:message`` lines caplog hears from a logger from now on."""
    views: list[LoggerLines] = []

    def start(logger: logging.Logger) -> LoggerLines:
        views.append(LoggerLines(caplog, logger))
        return views[-1]

    yield start
    for view in views:
        view.close()
