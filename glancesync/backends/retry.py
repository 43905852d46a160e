"""Retry policy of image transfers: which failures are transient, how often and how long to wait.

A multi-GB transfer to a remote region fails now and then for reasons that go away on
their own: a connection reset by a load balancer, a Glance restarting (connection
refused, 502/503), a read that timed out while a server was busy. Such a failure is
retried a bounded number of times with exponential backoff; anything else (a 4xx such as
415 "format rejected", a checksum mismatch, a missing region) fails at once, because
trying again would fail the same way and only delay the error.

The loop itself is **tenacity**'s: a maintained, widely used library (OpenStack's own
projects depend on it) whose stop/wait/retry strategies are tested far beyond what a
hand-written loop here would be, and which logs every retry through ``before_sleep``.

Defaults: 4 attempts, waits 0.5 s, 1 s, 2 s (capped at 8 s). Tests and operators can
change them with the ``RetryPolicy`` given to the backend, or with the environment
variables ``GLANCESYNC_RETRY_ATTEMPTS``, ``GLANCESYNC_RETRY_WAIT`` (first wait, seconds)
and ``GLANCESYNC_RETRY_MAX_WAIT``.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from glancesync import regionlog
from glancesync.errors import BackendError

LOG = logging.getLogger(__name__)
T = TypeVar("T")

_STATUS_LINE = re.compile(r"\s*(?:HTTP\s+)?([1-5]\d\d)\b")
ENV_ATTEMPTS = "GLANCESYNC_RETRY_ATTEMPTS"
ENV_WAIT = "GLANCESYNC_RETRY_WAIT"
ENV_MAX_WAIT = "GLANCESYNC_RETRY_MAX_WAIT"
# Texts of transient failures whose exception class is not specific enough.
_TRANSIENT_TEXT = (
    "connection reset",
    "connection refused",
    "connection aborted",
    "broken pipe",
    "timed out",
    "remote end closed",
    "remotedisconnected",
    "connection broken",
    "incompleteread",
)


@dataclass(frozen=True)
class RetryPolicy:
    """How many times a transfer is tried and the backoff between tries."""

    attempts: int = 4
    wait: float = 0.5
    max_wait: float = 8.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetryPolicy:
        """The defaults, overridden by ``GLANCESYNC_RETRY_*`` (invalid values are ignored)."""
        env = os.environ if environ is None else environ
        default = cls()
        return cls(
            attempts=max(1, int(_number(env.get(ENV_ATTEMPTS), default.attempts))),
            wait=max(0.0, _number(env.get(ENV_WAIT), default.wait)),
            max_wait=max(0.0, _number(env.get(ENV_MAX_WAIT), default.max_wait)),
        )

    def retrying(self, what: str = "transfer") -> tenacity.Retrying:
        """A tenacity controller: retry transient errors, re-raise the last one when done."""
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_exponential(multiplier=self.wait, min=self.wait, max=self.max_wait),
            retry=tenacity.retry_if_exception(is_transient),
            before_sleep=_log_retry(what),
            reraise=True,
        )

    def call(self, func: Callable[[], T], what: str = "transfer") -> T:
        """``func()``, retried on transient errors."""
        return self.retrying(what)(func)


def _number(text: str | None, default: float) -> float:
    try:
        return float(text) if text not in (None, "") else default
    except ValueError:
        return default


def _log_retry(what: str) -> Callable[[tenacity.RetryCallState], None]:
    def log(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        regionlog.warning(
            LOG,
            "%s failed (attempt %d): %s; retrying in %.1f s",
            what,
            state.attempt_number,
            " ".join(str(error).split()) or type(error).__name__,
            wait,
        )

    return log


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it wraps) is worth retrying.

    Transient: connection refused/reset/aborted, timeouts, an HTTP status >= 500, and a
    stream that ended early. The whole ``__cause__``/``__context__`` chain is searched
    because glanceclient and keystoneauth rewrap the socket errors; an error marked
    ``Permanent`` stops the search: it is never retried. ``raise ... from None`` ends the
    chain too (the error was already turned into a final one).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (Permanent, BackendError)):
            # BackendError: already a final, reported failure (6.6); this includes
            # errors.Cancelled, which an operator asked for and no retry may undo.
            return False
        verdict = _verdict(current)
        if verdict is not None:
            return verdict
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return False


def _verdict(exc: BaseException) -> bool | None:
    """True/False when this exception alone decides, None to look at what it wraps."""
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return False  # a certificate that failed verification fails again: not transient
    status = http_status(exc)
    if status is not None:
        return status >= 500 or status in (408, 429)
    if _is_http_answer(exc):
        return False  # the server answered with a status glanceclient does not map
    if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
        return True
    if _is_library_transient(exc):
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    if any(marker in text for marker in _TRANSIENT_TEXT):
        return True
    return None


def http_status(exc: BaseException) -> int | None:
    """The HTTP status carried by a glanceclient or keystoneauth error, if any."""
    for attr in ("http_status", "code", "status_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    if isinstance(value, int) and 100 <= value <= 599:
        return value
    # glanceclient maps unknown statuses (415, 507...) to a bare HTTPException whose
    # details start with the status line: "415 Unsupported Media Type ...".
    details = getattr(exc, "details", None)
    match = _STATUS_LINE.match(details) if isinstance(details, str) else None
    return int(match.group(1)) if match else None


def _is_http_answer(exc: BaseException) -> bool:
    from glanceclient import exc as gexc

    return isinstance(exc, gexc.HTTPException)


def _is_library_transient(exc: BaseException) -> bool:
    """keystoneauth / requests / urllib3 connection and timeout errors."""
    from keystoneauth1 import exceptions as ksa

    transient: tuple[type[BaseException], ...] = (
        ksa.ConnectFailure,
        ksa.ConnectTimeout,
        ksa.RetriableConnectionFailure,
    )
    try:
        import requests
        import urllib3.exceptions as u3

        transient += (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            u3.ProtocolError,
            u3.TimeoutError,
        )
    except ImportError:  # pragma: no cover - requests is a dependency of keystoneauth
        pass
    return isinstance(exc, transient)


class Permanent(Exception):
    """A failure that must not be retried whatever it wraps (e.g. a checksum mismatch)."""
