"""Which master Glance notifications need a sync, and of which regions (pure logic).

Glance announces every change of an image (``image.create``, ``image.upload``,
``image.activate``, ``image.update``, ``image.send`` for each download, ``image.delete``,
...). Only a change that can alter what a region must hold needs a sync: an active image
of the master project that a region's target synchronises (reference 3.2), whose
visible fields differ from the last time this listener saw it. Downloads (``image.send``,
made by every sync itself), uploads still in progress, other projects' images and edits
that change nothing cost no sync; a deletion is logged, never propagated (the reference has
no rule that deletes region copies).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from glancesync.config import Target
from glancesync.image import Image
from glancesync.selection import is_synchronisable

CHANGE_EVENTS = frozenset({"image.upload", "image.activate", "image.update"})
DELETE_EVENT = "image.delete"
# Payload fields that no sync reads: a change limited to them is no change.
IGNORED_FIELDS = frozenset({"created_at", "updated_at", "deleted", "deleted_at", "tags"})


@dataclass(frozen=True)
class Decision:
    """What to do with one notification: the regions to sync and a line for the log."""

    regions: tuple[str, ...] = ()
    log: str | None = None


def payload_image(payload: Mapping[str, Any], region: str) -> Image:
    """The image of an ``image.*`` payload (``properties`` holds the user properties)."""
    properties = payload.get("properties") or {}
    return Image(
        name=payload.get("name") or "",
        id=str(payload.get("id") or ""),
        region=region,
        owner=payload.get("owner") or "",
        is_public=_is_public(payload),
        checksum=payload.get("checksum") or "",
        size=int(payload.get("size") or 0),
        status=payload.get("status") or "",
        user_properties={k: v for k, v in properties.items() if not k.startswith("glancesync_")},
        disk_format=payload.get("disk_format") or "",
        container_format=payload.get("container_format") or "",
        min_ram=int(payload.get("min_ram") or 0),
        min_disk=int(payload.get("min_disk") or 0),
        protected=bool(payload.get("protected")),
    )


def _is_public(payload: Mapping[str, Any]) -> bool:
    """``visibility`` when given (reference 6.3: only ``public`` is public), else the v1 flag."""
    if "visibility" in payload:
        return payload["visibility"] == "public"
    return payload.get("is_public") is True


def fingerprint(payload: Mapping[str, Any]) -> str:
    """The payload without the fields no sync reads, as comparable text."""
    kept = {k: v for k, v in payload.items() if k not in IGNORED_FIELDS}
    return json.dumps(kept, sort_keys=True, default=str)


@dataclass
class EventFilter:
    """Turns notifications into region lists; remembers what it saw of each image.

    ``regions`` pairs each region of the schedule's list (full name) with its target.
    """

    master_region: str
    master_tenant: str
    regions: Sequence[tuple[str, Target]]
    _seen: dict[str, str] = field(default_factory=dict)

    def decide(self, event_type: str, payload: Mapping[str, Any]) -> Decision:
        if not isinstance(payload, Mapping) or not payload.get("id"):
            return Decision()
        if payload.get("owner") != self.master_tenant:
            return Decision()
        if event_type == DELETE_EVENT:
            self._seen.pop(str(payload["id"]), None)
            return Decision(log=_deleted(payload))
        if event_type not in CHANGE_EVENTS or payload.get("status") != "active":
            return Decision()
        return Decision(self._changed(payload))

    def _changed(self, payload: Mapping[str, Any]) -> tuple[str, ...]:
        image_id, print_ = str(payload["id"]), fingerprint(payload)
        if self._seen.get(image_id) == print_:
            return ()
        self._seen[image_id] = print_
        image = payload_image(payload, self.master_region)
        warnings: list[str] = []
        return tuple(
            region for region, target in self.regions if is_synchronisable(image, target, warnings)
        )


def _deleted(payload: Mapping[str, Any]) -> str:
    return (
        f"Master image {payload.get('name') or ''} ({payload['id']}) was deleted; "
        "its copies in the regions are kept"
    )
