"""Operator-facing sentences for each status (the REST image report, reference 10.6)."""

from __future__ import annotations

import csv
import io

from glancesync import converted, stores
from glancesync import status as st
from glancesync.status import ImageStatus


def status_message(s: ImageStatus) -> str | None:
    """Why the image is in this state and what happens next, or None when all is well.

    For a target that converts the image, the sentence also names the formats; for a
    copy missing from configured stores, the stores (glancesync.stores)."""
    message = _converted_message(s)
    if not s.missing_stores:
        return message
    where = stores.store_message(s.missing_stores)
    if s.status == st.PENDING_METADATA:
        return (
            f"Same content as the master; {where} (visibility, properties or kernel/ramdisk "
            "ids are updated where they differ)"
        )
    return f"{message}; {where}" if message else f"Same content as the master; {where}"


def _converted_message(s: ImageStatus) -> str | None:
    message = _plain_message(s)
    if not s.convert_to:
        return message
    difference = converted.format_difference(s.master, s.region_image, s.convert_to)
    conversion = f"copies are converted from {s.master.disk_format} to {s.convert_to}"
    if message is None:
        return f"Converted copy ({s.master.disk_format} to {s.convert_to}) of the master"
    if difference and s.status not in st.FINAL:
        return f"{message} ({difference})"
    return f"{message} ({conversion})"


def _plain_message(s: ImageStatus) -> str | None:
    checksum = converted.rule_checksum(s.region_image) if s.region_image else ""
    if s.status == st.OK:
        return None
    messages = {
        st.OK_STALLED: f"Region checksum {checksum} differs from the master, but it is in "
        "dontupdate: the image is left as it is",
        st.ERROR_CHECKSUM: f"Region checksum {checksum} differs from the master; add it to "
        "dontupdate, replace or rename",
        st.PENDING_METADATA: "Same content as the master; visibility, properties or "
        "kernel/ramdisk ids will be updated",
        st.PENDING_UPLOAD: "Not in the region; it will be uploaded",
        st.PENDING_REPLACE: f"Region checksum {checksum} differs from the master; the image "
        "will be replaced",
        st.PENDING_RENAME: f"Region checksum {checksum} differs from the master; it will be "
        f"renamed {s.name}.old and the master image uploaded",
        st.PENDING_AMI: f"Waits for {', '.join(s.waits_for)} to be uploaded",
    }
    if s.status == st.PENDING_METADATA and s.members:
        return f"{messages[s.status]}; members: {s.members.describe()}"
    if s.status == st.ERROR_AMI:
        if s.missing:
            return (
                f"Needs {', '.join(s.missing)} as kernel or ramdisk, which is not in the "
                "region and will not be uploaded"
            )
        return "Refers to a kernel or ramdisk that is not among the master images"
    return messages[s.status]


def image_entry(s: ImageStatus) -> dict:
    return {
        "id": s.region_image.id if s.region_image else None,
        "name": s.name,
        "status": s.status,
        "message": status_message(s),
    }


def status_lines(region: str, statuses: list[ImageStatus]) -> str:
    """``status,<F>,<name>`` CSV lines, quoted when needed (7.6)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for s in statuses:
        writer.writerow([s.status, region, s.name])
    return out.getvalue()
