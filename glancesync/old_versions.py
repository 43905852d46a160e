"""Running ``keep_old``: deleting the renamed old versions past the N kept.

Run at the end of every region's sync, so the images the run itself renamed count
(``keep_old = 0`` leaves no ``.old`` copy after the run). Nothing here stops the region:
a protected image or a deletion Glance refuses is a warning and the run goes on.
"""

from __future__ import annotations

import logging

from glancesync import result as rs
from glancesync.backends.base import Backend
from glancesync.errors import BackendError
from glancesync.image import Image
from glancesync.retention import retention

DELETE_OLD = "delete_old"
DELETED = "deleted (keep_old)"


def keep_old(
    backend: Backend,
    region: str,
    full: str,
    log: logging.Logger,
    images: list[Image],
    tenant_id: str,
    keep: int | None,
    dry_run: bool,
) -> list[rs.ImageResult]:
    """Delete (or, dry-run, list) the candidates past ``keep``; one result row each."""
    plan = retention(images, tenant_id, keep)
    rows = []
    for image in plan.protected:
        log.warning(
            f"{full}: old version {image.name} ({image.id}) is protected; kept although "
            f"keep_old = {keep}"
        )
        rows.append(rs.ImageResult(image.name, None, DELETE_OLD, rs.NOT_RUN, "protected"))
    for image in plan.delete:
        if dry_run:
            log.info(
                f"{full}: Old version pending to delete (keep_old = {keep}) "
                f"{image.name} ({image.id})"
            )
            rows.append(rs.ImageResult(image.name, None, DELETE_OLD, rs.PLANNED))
            continue
        log.info(f"{full}: Deleting old version {image.name} ({image.id}), keep_old = {keep}")
        try:
            backend.delete(region, image.id)
        except BackendError as exc:
            log.warning(f"{full}: old version {image.name} not deleted: {exc}")
            rows.append(rs.ImageResult(image.name, None, DELETE_OLD, rs.FAILED, str(exc)))
            continue
        rows.append(rs.ImageResult(image.name, None, DELETE_OLD, DELETED))
    return rows
