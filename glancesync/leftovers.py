"""Marked (in-progress) images: leftovers to delete, or another run's upload to leave alone.

The real backend marks every image it creates with ``glancesync_upload = <run id>`` and
removes the mark once the data is verified; when the upload fails it deletes the image
itself. Only a process that dies, or a region server that dies mid-upload (the delete then
fails too), leaves a marked image behind. Mostly it is not ``active``: non-active images
are ignored by the status algorithm, but it wastes space and clutters listings.

A marked image may also be an upload still going on in another run (cron, a person, the
service, another host): deleting it would break that upload (D20). So a marked image of
another run is a leftover only when it is older than the target's ``leftover_age``
(measured from Glance's ``created_at``) or when the caller knows its run is dead
(``Runs.is_dead``: the service knows its tasks, the CLI knows the processes of its host,
boot and pid namespace). A younger one names an image being uploaded elsewhere: this run
skips that image instead of uploading a second copy. The age is Glance's own clock
(``Date`` of its answers) minus ``created_at`` when the backend can tell
(``server_now``), this host's UTC clock otherwise.

A run killed after Glance took the last byte but before the mark was removed leaves an
*active* marked copy. Metadata updates never touch the reserved mark, so such a copy of a
run known over is settled here (``stale_copies``): verified against its master (checksum
and multihash), its mark is removed; otherwise it is a leftover, left out of the plan so
that the master is uploaded again.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from glancesync.backends.base import UPLOAD_MARKER, Backend
from glancesync.errors import BackendError
from glancesync.image import Image, owned_by, same_hashes
from glancesync.processes import pid_alive, process_scope, same_scope

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
    """``cli:<host>:<pid>:<random>:<scope>``: a run of the same host, boot and pid
    namespace (glancesync.processes) can tell it is dead."""
    host, pid, nonce = socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8]
    return f"{CLI_PREFIX}:{host}:{pid}:{nonce}:{process_scope()}"


def cli_run_dead(run_id: str) -> bool:
    """A CLI run of this host and process scope whose process is gone; anything else is
    not known dead. Ids from before the scope (``cli:<host>:<pid>:<random>``) are judged
    by host and pid alone, as they always were."""
    parts = run_id.split(":", 4)
    if len(parts) < 3 or parts[0] != CLI_PREFIX or parts[1] != socket.gethostname():
        return False
    pid_text = parts[2]
    if not pid_text.isdigit():
        return False
    if len(parts) == 5 and not same_scope(parts[4]):
        return False  # another boot or pid namespace: its pid means nothing here
    if int(pid_text) == os.getpid():
        return False  # this process: its runs are either this one or still going
    return not pid_alive(int(pid_text))


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
    verified: list[Image] = field(default_factory=list)  # active copies to unmark

    def replaced(self) -> frozenset[str]:
        """Ids of the active leftovers: copies that failed verification, left out of the
        plan so that their master is uploaded again."""
        return frozenset(image.id for image in self.leftovers if image.status == "active")


def classify(
    images: list[Image],
    tenant_id: str,
    runs: Runs,
    max_age: int,
    clock: Callable[[], datetime | None] | None = None,
    wanted: Mapping[str, Image] | None = None,
) -> Marked:
    """``clock``: the region's own clock (Glance's), asked only when there is a marked
    image; ``runs.now`` (this host's) when it gives nothing. ``wanted`` (the masters by
    name): active marked copies of ended runs are settled too (``stale_copies``)."""
    found = marked(images, tenant_id)
    active = [] if wanted is None else marked_active(images, tenant_id)
    if not found and not active:
        return Marked([], frozenset())
    now = (clock() if clock is not None else None) or runs.now()
    gone = [image for image in found if is_leftover(image, runs, max_age, now)]
    gone_ids = {image.id for image in gone}
    busy = frozenset(image.name for image in found if image.id not in gone_ids)
    verified, failed = stale_copies(active, runs, max_age, now, wanted or {})
    return Marked(gone + failed, busy, verified)


def marked_active(images: list[Image], tenant_id: str) -> list[Image]:
    """Active images of this tenant that still carry the upload marker."""
    return [
        image
        for image in images
        if image.status == "active"
        and UPLOAD_MARKER in image.user_properties
        and owned_by(image, tenant_id)
    ]


def stale_copies(
    active: list[Image], runs: Runs, max_age: int, now: datetime, wanted: Mapping[str, Image]
) -> tuple[list[Image], list[Image]]:
    """The active marked copies of runs known over (dead, or older than ``max_age``),
    split into (verified against their master: to unmark, not verified: to delete).

    A copy of unknown age is left alone: a live run may be about to unmark it."""
    verified: list[Image] = []
    failed: list[Image] = []
    for image in active:
        owner = str(image.user_properties.get(UPLOAD_MARKER, ""))
        age = age_seconds(image, now)
        over = owner == runs.run_id or runs.is_dead(owner)
        if not over and (age is None or age <= max_age):
            continue
        master = wanted.get(image.name)
        if master is not None and same_hashes(master, image):
            verified.append(image)
        else:
            failed.append(image)
    return verified, failed


def unmark_verified(
    backend: Backend, region: str, full: str, images: list[Image], log: logging.Logger
) -> int:
    """Remove the marker of ``images`` (verified copies of ended runs); returns how many.

    Best effort, like ``delete_leftovers``: the next run tries again."""
    done = 0
    for image in images:
        log.info(f"{full}: Image {image.id} of an interrupted upload verified; marker removed")
        try:
            backend.unmark(region, image)
        except BackendError as exc:
            log.warning(str(exc))
            continue
        done += 1
    return done


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
