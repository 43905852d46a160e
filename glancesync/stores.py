"""Multi-store regions: which stores a region's copies must be in, and what each lacks.

A target with ``stores = a, b`` (or ``all_stores = true``) wants every copy in those
stores of the region's multi-store Glance (README "Multi-store regions"): a copy is
uploaded into the first and Glance copies it into the others itself (``copy-image``).
Pure: the target's options, the stores the region's Glance has, and the statuses in;
the wanted stores, the adjusted statuses and the log lines out. A copy in every store
but one has the master's content: it is ``pending_metadata``, like any other difference
a sync fixes without sending the data again.
"""

from __future__ import annotations

import dataclasses

from glancesync import status as st
from glancesync.config import Target
from glancesync.errors import BackendError, ErrorKind
from glancesync.image import Image
from glancesync.status import RegionStatus

# Statuses whose region image has the master's content: only those can lack a store.
_SAME_CONTENT = frozenset({st.OK, st.PENDING_METADATA, st.PENDING_AMI})


def configured(target: Target) -> bool:
    """Whether the target names stores at all (only then is the region's Glance asked)."""
    return bool(target.stores) or target.all_stores


def wanted_stores(full: str, target: Target, available: list[str]) -> tuple[str, ...]:
    """The stores every copy of the region must be in, the upload's store first.

    ``available``: the stores of the region's Glance, its default first (empty for a
    Glance without multi-store). A configured store the region lacks is a failure of the
    region: nothing could make its copies complete.
    """
    if target.all_stores:
        listed = [name for name in target.stores if name in available]
        wanted = tuple(listed + [name for name in available if name not in listed])
        if wanted:
            return wanted
        raise BackendError(f"{full}: all_stores is set but the region's Glance has no stores")
    unknown = [name for name in target.stores if name not in available]
    if unknown:
        has = ", ".join(available) if available else "none: the region is not multi-store"
        raise BackendError(
            f"{full}: the region's Glance has no store {', '.join(unknown)} (its stores: {has})",
            ErrorKind.OTHER,
        )
    return tuple(target.stores)


def missing_stores(image: Image, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The wanted stores ``image`` is not in, in the wanted order."""
    return tuple(name for name in wanted if name not in image.stores)


def with_stores(status: RegionStatus, wanted: tuple[str, ...]) -> RegionStatus:
    """The statuses with each copy's missing stores noted; an ``ok`` copy that lacks a
    store becomes ``pending_metadata`` (a sync copies it there)."""
    images = []
    for s in status.images:
        missing = missing_stores(s.region_image, wanted) if s.region_image else ()
        if s.status not in _SAME_CONTENT or not missing:
            images.append(s)
            continue
        new = st.PENDING_METADATA if s.status == st.OK else s.status
        images.append(dataclasses.replace(s, status=new, missing_stores=missing))
    return RegionStatus(images, status.region_map, status.pending)


def store_lines(full: str, status: RegionStatus) -> list[str]:
    """One log line per copy that lacks stores, naming them."""
    return [
        f"{full}: image {s.name} is not in store(s) {', '.join(s.missing_stores)}; "
        "it will be copied there"
        for s in status.images
        if s.missing_stores
    ]


def store_message(missing: tuple[str, ...]) -> str:
    """The report's sentence for a copy missing from stores."""
    return f"not in store(s) {', '.join(missing)}: Glance will copy it there"
