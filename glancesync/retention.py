"""Retention of old versions: which renamed images ``keep_old = N`` deletes.

Pure: a region's images in, the images to delete and the protected ones kept out.
Only images glancesync renamed are candidates (they carry ``glancesync_renamed_at``): a
``.old`` made by a person, or before glancesync wrote the property, is never deleted.
Of the candidates of one name (``<name>.old``, or ``<base>_obsolete`` for renamed
obsolete copies) the N renamed last stay (README "Retention of old versions").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from glancesync.image import RENAMED_AT, Image, owned_by


@dataclass
class Retention:
    """``delete``: candidates past the N kept; ``protected``: the same, but Glance would
    refuse to delete them (a warning each, never an error)."""

    delete: list[Image] = field(default_factory=list)
    protected: list[Image] = field(default_factory=list)


def renamed_now(now: datetime | None = None) -> str:
    """The value written in ``glancesync_renamed_at``: UTC, ISO 8601, seconds."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(text: str) -> datetime:
    """A renamed_at value as a time; an unreadable one counts as the oldest."""
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def candidates(images: Iterable[Image], tenant_id: str) -> dict[str, list[Image]]:
    """The tenant's images glancesync renamed, by name, the latest renamed first."""
    groups: dict[str, list[Image]] = {}
    for image in images:
        if RENAMED_AT in image.user_properties and owned_by(image, tenant_id):
            groups.setdefault(image.name, []).append(image)
    for group in groups.values():
        group.sort(key=lambda i: (_moment(i.user_properties[RENAMED_AT]), i.id), reverse=True)
    return groups


def retention(images: Iterable[Image], tenant_id: str, keep: int | None) -> Retention:
    """What ``keep_old = keep`` removes; ``keep`` None keeps everything."""
    result = Retention()
    if keep is None:
        return result
    for name in sorted(groups := candidates(images, tenant_id)):
        for image in groups[name][keep:]:
            (result.protected if image.protected else result.delete).append(image)
    return result
