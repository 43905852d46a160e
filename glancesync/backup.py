"""``--make-backup`` (reference 7.6): save every image of some regions as CSV files.

The files are exactly what the mock loads (8.2), so a backup of real clouds becomes a
scenario or a demo by renaming its folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime

from glancesync.backends import csvfile
from glancesync.backends.base import Backend
from glancesync.errors import GlanceSyncError, UsageError

FOLDER_PREFIX = "backup_glance_"


def make_backup(
    backends: Mapping[str, Backend],
    regions: list[tuple[str, str]],
    master_region: str,
    logger: logging.Logger,
    folder_parent: str = ".",
) -> tuple[str, bool]:
    """Back up ``regions`` (target name, bare region) plus the master region, each once.

    Returns the folder created and whether any region failed; a failing region is
    logged and the others still get their file.
    """
    folder = os.path.join(folder_parent, FOLDER_PREFIX + datetime.now().isoformat())
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the backup folder {folder}: {exc.strerror or exc}"
        ) from None
    failed = False
    for target_name, region in _unique_with_master(regions, master_region):
        backend = backends[target_name]
        if not _backup_region(backend, region, folder, logger):
            failed = True
    return folder, failed


def _unique_with_master(
    regions: list[tuple[str, str]], master_region: str
) -> list[tuple[str, str]]:
    """The regions in the given order, then the master region, without repetitions.

    Callers pass master-target regions as ("master", bare name), so ``Burgos`` and
    ``master:Burgos`` on the command line are one entry here.
    """
    unique: list[tuple[str, str]] = []
    for entry in [*regions, ("master", master_region)]:
        if entry not in unique:
            unique.append(entry)
    return unique


def _backup_region(backend: Backend, region: str, folder: str, logger: logging.Logger) -> bool:
    full = backend.full_name(region)
    logger.info("Backup of region %s", full)
    try:
        images = backend.list_images(region)
        path = os.path.join(folder, csvfile.backup_file_name(full))
        csvfile.write_backup(path, full, images)
    except (GlanceSyncError, OSError) as exc:
        logger.error("%s:Error retrieving images from region. Cause %s", full, _reason(full, exc))
        return False
    return True


_LISTING_ERROR = "Error retrieving image list. Cause: "


def _reason(full: str, exc: Exception) -> str:
    """The cause alone: the line already names the region (reference 7.6)."""
    text = str(exc)
    text = text.removeprefix(f"{full}: ")
    return text.removeprefix(_LISTING_ERROR)
