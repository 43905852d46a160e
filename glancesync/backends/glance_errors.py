"""How a failure of keystoneauth or glanceclient is reported: one short cause, one kind.

The libraries' texts are long chains of wrapped exceptions (``<object at 0x..>``, the
urllib3 retry message, the SSL reason); the operator gets ``connection to <host> failed:
<error>`` or a sentence that says which setting to fix. The kind (``ErrorKind``) is read
from the exception chain's types and HTTP statuses, never from our own messages, so the
metrics need not parse English.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Iterator

from glancesync.backends.retry import Permanent, http_status
from glancesync.errors import BackendError, ErrorKind

_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>:?\s*")
_CONNECT = re.compile(r"Unable to establish connection to (https?://[^/\s]+)")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
CERTIFICATE_FAILED = "CERTIFICATE_VERIFY_FAILED"
_TLS_HOST = re.compile(r"(https://[^/\s:]+(?::\d+)?)")
_VERIFY_WHY = re.compile(r"certificate verify failed: ([^()'\"]+)")
_INNER = re.compile(r"\b\w+(?:Error|Disconnected|Exception)\(['\"]([^'\"]+)")

# HTTP statuses with a kind of their own; other 4xx are OTHER, 5xx UNAVAILABLE.
_STATUS_KINDS = {
    401: ErrorKind.REFUSED,
    403: ErrorKind.REFUSED,
    404: ErrorKind.NOT_FOUND,
    409: ErrorKind.CONFLICT,
    413: ErrorKind.QUOTA,
    408: ErrorKind.TIMEOUT,
}


def short_reason(text: str) -> str:
    """Connection failures as ``connection to <host> failed: <error>``, not a 400-char chain."""
    if CERTIFICATE_FAILED in text:
        return tls_reason(text)
    match = _CONNECT.search(text)
    if match is None:
        return _OBJECT_REPR.sub("", text)
    inner = _ERRNO.search(text) or _INNER.search(text)
    why = inner.group(1).strip() if inner else "connection failed"
    return f"connection to {match.group(1)} failed: {why}"


def tls_reason(text: str) -> str:
    """A certificate that failed verification, in one sentence that says what to set."""
    host = _TLS_HOST.search(text)
    why = _VERIFY_WHY.search(text)
    where = f" of {host.group(1)}" if host else ""
    detail = f" ({why.group(1).strip()})" if why else ""
    return (
        f"the TLS certificate{where} could not be verified{detail}; "
        "set cacert to the CA bundle that signed it"
    )


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (password, token) replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps (glanceclient and keystoneauth rewrap socket errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_timeout(exc: BaseException) -> bool:
    """True if a timeout is anywhere in the exception chain (glanceclient rewraps them)."""
    from keystoneauth1 import exceptions as ksa

    for current in _chain(exc):
        if isinstance(current, (ksa.ConnectTimeout, TimeoutError)):
            return True
        if "timed out" in str(current).lower():
            return True
    return False


def kind_of(exc: BaseException) -> ErrorKind:
    """The kind of a failure of the client libraries (or of one already reported)."""
    if isinstance(exc, BackendError):
        return exc.kind
    if is_timeout(exc):
        return ErrorKind.TIMEOUT
    for current in _chain(exc):
        if isinstance(current, BackendError):
            return current.kind
        if isinstance(current, Permanent):
            return ErrorKind.CONTENT  # a mismatch of the bytes sent (glance_http.UploadFailed)
        status = http_status(current)
        if status is not None:
            fallback = ErrorKind.UNAVAILABLE if status >= 500 else ErrorKind.OTHER
            return _STATUS_KINDS.get(status, fallback)
        if _is_connection_failure(current):
            return ErrorKind.CONNECTION
    return ErrorKind.OTHER


def _is_connection_failure(exc: BaseException) -> bool:
    """Connection refused/reset, a name that does not resolve, a certificate refused."""
    from keystoneauth1 import exceptions as ksa

    if isinstance(exc, (ConnectionError, socket.gaierror, ksa.ConnectFailure)):
        return True
    import requests
    from glanceclient import exc as gexc

    if isinstance(exc, (gexc.CommunicationError, requests.ConnectionError)):
        return True
    return CERTIFICATE_FAILED in str(exc)
