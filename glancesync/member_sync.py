"""Giving a region copy the master's visibility and members, after its update or upload.

``Backend.update`` sets public or private only; a ``shared`` master needs its copy made
``shared`` before Glance accepts members. The changes come planned (glancesync.members).
"""

from __future__ import annotations

import logging

from glancesync.backends.base import Backend
from glancesync.errors import BackendError
from glancesync.image import Image
from glancesync.members import PENDING, MemberChanges
from glancesync.planner import Action


def _visibility(master: Image, copy: Image) -> str | None:
    """The visibility the copy must be given besides what ``update`` sets, or None."""
    if master.shared and not copy.shared:
        return "shared"
    if not master.shared and copy.shared and not master.is_public:
        return "private"
    return None


def log_planned(log: logging.Logger, full: str, action: Action) -> None:
    """Dry-run: the member changes the real run would make."""
    if action.members:
        log.info(
            f"{full}: Image pending to update the members {action.name}: "
            f"{action.members.describe()}"
        )


def share(
    backend: Backend, region: str, full: str, log: logging.Logger, action: Action, copy: Image
) -> Image:
    """Visibility, then members (Glance refuses members on a private image); the copy
    as it is afterwards."""
    visibility = _visibility(action.master, copy) if action.master else None
    if visibility is not None:
        copy = backend.set_visibility(region, copy, visibility)
    changes = action.members
    if changes:
        log.info(f"{full}: Updating the members of image {action.name}: {changes.describe()}")
        _apply(backend, region, full, log, copy.id, changes)
    return copy


def _apply(
    backend: Backend,
    region: str,
    full: str,
    log: logging.Logger,
    image_id: str,
    changes: MemberChanges,
) -> None:
    for project in changes.add:
        backend.add_member(region, image_id, project)
    for project in changes.remove:
        backend.remove_member(region, image_id, project)
    statuses = {p: s for p, s in changes.add.items() if s != PENDING} | changes.status
    for project, status in statuses.items():
        try:
            backend.set_member_status(region, image_id, project, status)
        except BackendError as exc:  # accept_members without admin credentials
            log.warning(f"{full}: the status of member {project} stays as it is: {exc}")
