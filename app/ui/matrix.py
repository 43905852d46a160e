"""The image matrix of the web page: master images x regions, one status per cell.

Built from the same status computation as ``GET /v1/regions/<r>/images`` (nothing is
written), plus the master image's size and checksum and what a sync would do, which the
page shows in each cell's tooltip.
"""

from __future__ import annotations

from collections import Counter

from app.metrics import record_backend_error, record_statuses
from glancesync.engine import GlanceSync
from glancesync.errors import BackendError
from glancesync.report import status_message
from glancesync.selection import Catalogue

# What a sync does for each status (reference 5.2, last column), in the operator's words.
ACTIONS = {
    "ok": "nothing to do",
    "ok_stalled_checksum": "nothing (the region checksum is in dontupdate)",
    "error_checksum": "nothing: a warning until a rule or dontupdate applies",
    "error_ami": "nothing: the kernel or ramdisk is missing",
    "pending_metadata": "update the metadata",
    "pending_upload": "upload the image",
    "pending_replace": "upload the master image, then delete the old one",
    "pending_rename": "upload the master image, rename the old one .old and make it private",
    "pending_ami": "set the kernel/ramdisk ids after the uploads",
}


def status_class(status: str) -> str:
    """``ok``, ``pending`` or ``error``: the colour of the cell and the counted group."""
    if status.startswith("ok"):
        return "ok"
    return "pending" if status.startswith("pending") else "error"


def target_of(region: str) -> str:
    return region.split(":", 1)[0] if ":" in region else "master"


def region_column(gs: GlanceSync, region: str, catalogue: Catalogue, rows: dict[str, dict]) -> dict:
    """Read one region's statuses into ``rows``; the column's counts or its error."""
    column: dict = {"name": region, "target": target_of(region), "error": None}
    try:
        statuses = gs.region_statuses(region, catalogue).images
    except BackendError as exc:
        record_backend_error(region, exc)
        column["error"] = str(exc)
        column["counts"] = {}
        column["statuses"] = []
        return column
    for s in statuses:
        row = rows.setdefault(
            s.name,
            {"name": s.name, "size": s.master.size, "checksum": s.master.checksum, "cells": {}},
        )
        row["cells"][region] = {
            "status": s.status,
            "class": status_class(s.status),
            "message": status_message(s),
            "action": ACTIONS[s.status],
        }
    column["statuses"] = [s.status for s in statuses]
    record_statuses(region, column["statuses"])
    column["counts"] = dict(Counter(status_class(s.status) for s in statuses))
    return column


def build_matrix(gs: GlanceSync, regions: list[str]) -> dict:
    """``{"regions": [...], "images": [...]}``, images in (size, name) order.

    The master is listed once for all regions, and the regions' listings are fetched at
    the same time, in threads (the core's prefetch), not one region after the other.
    """
    rows: dict[str, dict] = {}
    try:
        catalogue = gs.load_master(prefetch=[gs.parse(region) for region in regions])
    except BackendError as exc:
        record_backend_error(gs.config.main.master_region, exc)
        error = f"Cannot read the master region: {exc}"
        columns = [
            {"name": r, "target": target_of(r), "error": error, "counts": {}, "statuses": []}
            for r in regions
        ]
        return {"regions": columns, "images": []}
    columns = [region_column(gs, region, catalogue, rows) for region in regions]
    images = sorted(rows.values(), key=lambda row: (row["size"] or 0, row["name"]))
    return {"regions": columns, "images": images}
