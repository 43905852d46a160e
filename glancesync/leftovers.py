"""Cleaning up after an interrupted upload.

The real backend marks every image it creates with ``glancesync_upload`` and removes the
mark once the data is verified; when the upload fails it deletes the image itself. Only
a process that dies, or a region server that dies mid-upload (the delete then fails
too), can leave a marked image behind: it is never ``active``, its name shadows nothing
(non-active images are ignored by the status algorithm) but it wastes space and clutters
listings. The next real sync of the region deletes it.

Assumption: one sync of a region at a time (the service enforces it; two CLI runs on the
same region at once could delete each other's upload in progress, which then fails and
is redone by the next run).
"""

from __future__ import annotations

import logging

from glancesync.backends.base import UPLOAD_MARKER, Backend
from glancesync.errors import BackendError
from glancesync.image import Image, owned_by


def leftovers(images: list[Image], tenant_id: str) -> list[Image]:
    """Non-active images of this tenant that still carry the upload marker."""
    return [
        image
        for image in images
        if image.status != "active"
        and UPLOAD_MARKER in image.user_properties
        and owned_by(image, tenant_id)
    ]


def delete_leftovers(
    backend: Backend,
    region: str,
    full: str,
    images: list[Image],
    tenant_id: str,
    log: logging.Logger,
) -> int:
    """Delete the leftovers of ``region``; returns how many went.

    Best effort: a failed delete is a warning, not a region failure, since the image
    does no harm and the next run tries again.
    """
    deleted = 0
    for image in leftovers(images, tenant_id):
        log.info(f"{full}: Deleting leftover image {image.id} of an interrupted upload")
        try:
            backend.delete(region, image.id)
        except BackendError as exc:
            log.warning(str(exc))
            continue
        deleted += 1
    return deleted
