"""Obsolete images (reference 6.2): pure planning of renames and property updates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from glancesync.config import Target
from glancesync.image import Image, owned_by, same_content
from glancesync.selection import OBSOLETE_SUFFIX, Catalogue


@dataclass
class ObsoleteUpdate:
    """Write ``name``, ``is_public`` and ``properties`` to the region image ``image``."""

    image: Image
    name: str
    is_public: bool
    properties: dict[str, Any]


def obsolete_masters(
    catalogue: Catalogue, wanted: dict[str, Image]
) -> tuple[dict[str, Image], list[str]]:
    """Obsolete master images by name, minus those whose base name is synchronised."""
    masters: dict[str, Image] = {}
    warnings = []
    for name, img in catalogue.images.items():
        if not name.endswith(OBSOLETE_SUFFIX):
            continue
        base = name[: -len(OBSOLETE_SUFFIX)]
        if base in wanted:
            warnings.append(
                f"Ignore obsolete master image {name} because {base} exists and it is "
                "synchronisable."
            )
            continue
        masters[name] = img
    return masters, warnings


def _obsolete_properties(master: Image, region: Image, syncprops: tuple[str, ...]) -> dict:
    props = dict(region.user_properties)
    for key in syncprops:
        if key in master.user_properties:
            props[key] = master.user_properties[key]
    return props


def obsolete_updates(
    catalogue: Catalogue,
    wanted: dict[str, Image],
    region_images: list[Image],
    target: Target,
    tenant_id: str,
) -> tuple[list[ObsoleteUpdate], list[str]]:
    """Region images to rename to ``<base>_obsolete`` or to refresh, in listing order."""
    masters, warnings = obsolete_masters(catalogue, wanted)
    updates = []
    for img in region_images:
        if img.status != "active" or not owned_by(img, tenant_id):
            continue
        renaming = img.name + OBSOLETE_SUFFIX in masters
        master = masters.get(img.name + OBSOLETE_SUFFIX if renaming else img.name)
        if master is None or not same_content(master, img):
            continue
        props = _obsolete_properties(master, img, target.obsolete_syncprops)
        changed = props != img.user_properties or master.is_public != img.is_public
        if renaming or changed:
            updates.append(ObsoleteUpdate(img, master.name, master.is_public, props))
    return updates, warnings
