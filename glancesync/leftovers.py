"""Marked (in-progress) images: leftovers to delete, or another run's upload to leave alone.

The real backend marks every image it creates with ``glancesync_upload = <run id>`` and
removes the mark once the data is verified; when the upload fails it deletes the image
itself. Only a process that dies, or a region server that dies mid-upload (the delete then
fails too), leaves a marked image behind: it is never ``active``, and non-active images
are ignored by the status algorithm, but it wastes space and clutters listings.

A marked image may also be an upload still going on in another run (cron, a person, the
service, another host): deleting it would break that upload (D20). So a marked image of
another run is a leftover only when it is older than the target's ``leftover_age``
(measured from Glance's ``created_at``) or when the
caller knows its run is dead (``Runs.is_dead``: the service knows its tasks, the CLI
knows the processes of its host). A younger one names an image being uploaded
elsewhere: this run skips that image instead of uploading a second copy. The age is
Glance's own clock (``Date`` of its answers) minus ``created_at`` when the backend can
tell (``server_now``), this host's UTC clock otherwise.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from glancesync.backends.base import UPLOAD_MARKER, Backend
from glancesync.errors import BackendError
from glancesync.image import Image, owned_by

DEFAULT_LEFTOVER_AGE = 3600
CLI_PREFIX = "cli"


def _never_dead(run_id: str) -> bool:
    return False


@dataclass(frozen=True)
class Runs:
    """Who this run is, and how to tell that another run is over.

    ``run_id`` is written in the marker of this run's uploads; ``is_dead(run_id)`` is
    true only when that run is known to have ended (a doubt means "alive").
    """

    run_id: str = field(default_factory=lambda: new_cli_run_id())
    is_dead: Callable[[str], bool] = _never_dead
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


def new_cli_run_id() -> str:
    """``cli:<host>:<pid>:<random>``: another run on this host can tell it is dead."""
    return f"{CLI_PREFIX}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def cli_run_dead(run_id: str) -> bool:
    """A CLI run of this host whose process is gone; anything else is not known dead."""
    prefix, _, rest = run_id.partition(":")
    host, _, rest = rest.partition(":")
    pid_text = rest.partition(":")[0]
    if prefix != CLI_PREFIX or host != socket.gethostname() or not pid_text.isdigit():
        return False
    if int(pid_text) == os.getpid():
        return False  # this process: its runs are either this one or still going
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return _zombie(int(pid_text))


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def marked(images: list[Image], tenant_id: str) -> list[Image]:
    """Non-active images of this tenant that still carry the upload marker."""
    return [
        image
        for image in images
        if image.status != "active"
        and UPLOAD_MARKER in image.user_properties
        and owned_by(image, tenant_id)
    ]


def age_seconds(image: Image, now: datetime) -> float | None:
    """Seconds since Glance created ``image``; None when it gives no time."""
    if not image.created_at:
        return None
    try:
        created = datetime.fromisoformat(image.created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return (now - created).total_seconds()


def is_leftover(image: Image, runs: Runs, max_age: int, now: datetime) -> bool:
    """Ours, of a dead run, older than ``max_age``, or of unknown age (no ``created_at``)."""
    owner = str(image.user_properties.get(UPLOAD_MARKER, ""))
    if owner == runs.run_id or runs.is_dead(owner):
        return True
    age = age_seconds(image, now)
    return age is None or age > max_age


@dataclass
class Marked:
    """The marked images of a region, split by ``classify``."""

    leftovers: list[Image]
    busy: frozenset[str]  # names another run is uploading now


def classify(
    images: list[Image],
    tenant_id: str,
    runs: Runs,
    max_age: int,
    clock: Callable[[], datetime | None] | None = None,
) -> Marked:
    """``clock``: the region's own clock (Glance's), asked only when there is a marked
    image; ``runs.now`` (this host's) when it gives nothing."""
    found = marked(images, tenant_id)
    if not found:
        return Marked([], frozenset())
    now = (clock() if clock is not None else None) or runs.now()
    gone = [image for image in found if is_leftover(image, runs, max_age, now)]
    gone_ids = {image.id for image in gone}
    busy = frozenset(image.name for image in found if image.id not in gone_ids)
    return Marked(gone, busy)


def delete_leftovers(
    backend: Backend,
    region: str,
    full: str,
    images: list[Image],
    log: logging.Logger,
) -> int:
    """Delete ``images`` (leftovers of ``region``); returns how many went.

    Best effort: a failed delete is a warning, not a region failure, since the image
    does no harm and the next run tries again.
    """
    deleted = 0
    for image in images:
        log.info(f"{full}: Deleting leftover image {image.id} of an interrupted upload")
        try:
            backend.delete(region, image.id)
        except BackendError as exc:
            log.warning(str(exc))
            continue
        deleted += 1
    return deleted
