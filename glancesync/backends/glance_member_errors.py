"""How a failed member call or Keystone project look-up is told to the operator.

Glance answers member calls with terse texts ("Not allowed to create members for image
<id>.") that do not say what to fix; the common refusals get a sentence that does, and a
kind (``ErrorKind``) read from the HTTP status, like every other backend error
(glancesync.backends.glance_errors). Two answers mean the work is already done and are
no failure at all: a member added twice (409: another run added it) and a member
removed twice (404). Pure: an HTTP status in, a reason out.
"""

from __future__ import annotations

from glancesync.backends.retry import http_status
from glancesync.errors import ErrorKind

ADD, REMOVE, STATUS, LIST, PROJECTS = "add", "remove", "status", "list", "projects"

# (call, HTTP status) -> what the operator reads after "Cause: "
_REASONS = {
    (ADD, 403): (
        "Glance refused it (HTTP 403): only the project that owns a shared image may "
        "share it, and the copy must be shared"
    ),
    (ADD, 413): (
        "the image has as many members as the region's Glance allows (image_member_quota, HTTP 413)"
    ),
    (REMOVE, 403): "Glance refused it (HTTP 403): only the image's owner may remove members",
    (STATUS, 403): (
        "Glance refused it (HTTP 403): only admin credentials may set the status of "
        "another project's membership (accept_members)"
    ),
    (STATUS, 404): "the project is not a member of the image (HTTP 404)",
    (LIST, 403): "Glance refused it (HTTP 403): only shared images have members",
    (PROJECTS, 401): "Keystone refused the credentials (HTTP 401)",
    (PROJECTS, 403): (
        "Keystone refused it (HTTP 403): members = by-name reads projects and domains, "
        "which needs admin credentials in both targets"
    ),
}
_NOT_FOUND = "the image is gone from the region (HTTP 404)"
# Answers that leave the image as the call wanted it.
_DONE = frozenset({(ADD, 409), (REMOVE, 404)})

_KINDS = {
    401: ErrorKind.AUTH,
    403: ErrorKind.REFUSED,
    404: ErrorKind.NOT_FOUND,
    409: ErrorKind.CONFLICT,
    413: ErrorKind.QUOTA,
}


def answer_status(exc: BaseException) -> int | None:
    """The HTTP status of a failure (glanceclient's or requests'), if it has one."""
    current: BaseException | None = exc
    while current is not None:
        status = http_status(current)
        if status is not None:
            return status
        current = current.__cause__ or current.__context__
    return None


def already_done(call: str, status: int | None) -> bool:
    """The failure says the member is already as wanted (a retry, or another run)."""
    return (call, status) in _DONE


def member_reason(call: str, status: int | None) -> str | None:
    """The operator's sentence for this refusal, or None (the library's text is used)."""
    if status is None:
        return None
    reason = _REASONS.get((call, status))
    if reason is None and status == 404 and call != PROJECTS:
        return _NOT_FOUND
    return reason


def member_kind(status: int | None) -> ErrorKind | None:
    """The kind of a refused member call; None when the status says nothing special."""
    if status is None:
        return None
    return _KINDS.get(status, ErrorKind.UNAVAILABLE if status >= 500 else None)
