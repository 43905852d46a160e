"""Which master images go where (reference 3 and 4).

Pure functions: images and settings in, images and warning texts out. The caller logs
the warnings, so the same code serves the CLI, the service and the tests.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from glancesync.condition import ConditionEvalError
from glancesync.config import Target
from glancesync.image import AMI_PROPERTIES, Image, owned_by, same_content, without_reserved

OBSOLETE_SUFFIX = "_obsolete"


@dataclass
class Catalogue:
    """The master images that may be synchronised, by name (3.1).

    ``kernel_id``/``ramdisk_id`` hold image *names* here; ``unresolved`` names images
    whose reference matched no catalogue image (reference 3.1).
    """

    images: dict[str, Image]
    unresolved: frozenset[str] = frozenset()
    warnings: list[str] = field(default_factory=list)


def master_catalogue(images: list[Image], tenant_id: str) -> Catalogue:
    candidates = [
        img for img in images if img.status == "active" and img.name and owned_by(img, tenant_id)
    ]
    counts = Counter(img.name for img in candidates)
    warnings = [
        f"Duplicated images with name {name} will be ignored" for name, n in counts.items() if n > 1
    ]
    # glancesync_* properties of a master image (reference 1.4) are not the catalogue's business.
    kept = {
        img.name: img.copy(user_properties=without_reserved(img.user_properties))
        for img in candidates
        if counts[img.name] == 1
    }
    names_by_id = {img.id: img.name for img in kept.values()}
    unresolved = set()
    for img in kept.values():
        for prop in AMI_PROPERTIES:
            if prop not in img.user_properties:
                continue
            value = img.user_properties[prop]
            if value in (None, ""):
                del img.user_properties[prop]
            elif value in names_by_id:
                img.user_properties[prop] = names_by_id[value]
            else:
                unresolved.add(img.name)
                warnings.append(
                    f"Image {img.name} refers to {prop} {value}, "
                    "which is not among the master images"
                )
    return Catalogue(kept, frozenset(unresolved), warnings)


def is_synchronisable(image: Image, target: Target, warnings: list[str]) -> bool:
    """The rules of reference 3.2, first match wins; a failure of the condition counts as
    false (reference 3.3)."""
    if image.name.endswith(OBSOLETE_SUFFIX):
        return False
    if image.id in target.forcesyncs:
        return True
    if target.metadata_condition is not None:
        try:
            return target.metadata_condition.evaluate(image, target.metadata_set)
        except ConditionEvalError as exc:
            warnings.append(
                f"metadata_condition of target {target.name} failed for image {image.name}: {exc}"
            )
            return False
    if not image.is_public:
        return False
    return not target.metadata_set or bool(target.metadata_set & image.user_properties.keys())


def synchronisable(catalogue: Catalogue, target: Target) -> tuple[dict[str, Image], list[str]]:
    """The catalogue images this target synchronises, by name, plus warnings."""
    warnings: list[str] = []
    chosen = {
        name: img
        for name, img in catalogue.images.items()
        if is_synchronisable(img, target, warnings)
    }
    return chosen, warnings


def region_map(
    region_images: list[Image],
    wanted: dict[str, Image],
    target: Target,
    tenant_id: str,
    region: str,
) -> tuple[dict[str, Image], list[str]]:
    """Reduce a region's listing to one image per synchronisable name (section 4)."""
    kept: dict[str, Image] = {}
    warnings: list[str] = []
    for img in region_images:
        if not img.name or img.name not in wanted:
            continue
        if not owned_by(img, tenant_id):
            warnings.append(
                f"{region}: image {img.name} (UUID {img.id}) is owned by other tenant: {img.owner}"
            )
            if target.only_tenant_images:
                continue
        if img.status != "active":
            warnings.append(
                f"{region}: state of image {img.name} with UUID {img.id}  "
                f"is not active: {img.status}"
            )
            continue
        previous = kept.get(img.name)
        if previous is None:
            kept[img.name] = img
            continue
        warnings.append(
            f"{region}: image name {img.name} is duplicated. UUIDs: {img.id} {previous.id}"
        )
        master = wanted[img.name]
        if same_content(master, img) and not same_content(master, previous):
            kept[img.name] = img
    return kept, warnings
