"""One way for a test to wait for something another thread or process does."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    step: float = 0.05,
    *,
    what: str | Callable[[], str] = "",
    ignore: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """Poll ``condition`` until it returns a true value, and return that value.

    Exceptions of the ``ignore`` kinds count as "not yet": what a test waits for is often
    not there at first (a server not listening yet, a row not written yet). On timeout an
    AssertionError says what was awaited (``what``: a text, or a function describing the
    state at that moment; by default the condition's source line) and chains the last
    such exception, so a failing wait says why rather than just "False".
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
        except ignore as exc:
            last_error, value = exc, None
        if value:
            return value
        if time.monotonic() > deadline:
            awaited = (what() if callable(what) else what) or describe(condition)
            message = f"waited {timeout} s for {awaited}; last value {value!r}"
            if last_error is not None:
                message += f", last error {last_error!r}"
            raise AssertionError(message) from last_error
        time.sleep(step)


def describe(condition: Callable[[], object]) -> str:
    """The source line of a lambda says best what was awaited; else the function's name."""
    try:
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return getattr(condition, "__qualname__", repr(condition))
