"""From statuses to an ordered list of actions (reference 6.1-6.5).

Pure: the plan is data, so a dry-run prints exactly what a real run would execute.
Kernel and ramdisk references stay *names* in the plan; the executor turns them into
region ids when it runs, because images uploaded earlier in the run get their ids then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from glancesync import status as st
from glancesync.config import Target
from glancesync.image import AMI_PROPERTIES, Image, followed_attributes, is_reserved
from glancesync.members import MemberChanges
from glancesync.obsolete import ObsoleteUpdate
from glancesync.status import ImageStatus, RegionStatus

UPDATE_OBSOLETE = "update_obsolete"
UPDATE_METADATA = "update_metadata"
UPLOAD = "upload"
REPLACE = "replace"
RENAME = "rename"
UPDATE_AMI = "update_ami"
WARN_CHECKSUM = "warn_checksum"
WARN_PROTECTED = "warn_protected"
WARNINGS = frozenset({WARN_CHECKSUM, WARN_PROTECTED})

_UPLOAD_KIND = {st.PENDING_UPLOAD: UPLOAD, st.PENDING_REPLACE: REPLACE, st.PENDING_RENAME: RENAME}
UPLOAD_KINDS = frozenset(_UPLOAD_KIND.values())


@dataclass
class Action:
    """One step of a region's sync.

    ``properties`` are the user properties to write, without kernel_id/ramdisk_id;
    ``ami_refs`` maps those two properties to the *names* of the images they must point
    to (a property absent from ``ami_refs`` is removed). ``attributes`` are the
    ``image.FOLLOWED`` values a metadata update sets (empty: left as they are).
    """

    kind: str
    name: str
    master: Image | None = None
    region_image: Image | None = None
    is_public: bool = False
    properties: dict[str, Any] = field(default_factory=dict)
    ami_refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    members: MemberChanges | None = None  # of a shared image (glancesync.members)
    convert_to: str = ""  # the copy's format when it is converted (glancesync.convert)

    @property
    def size(self) -> int:
        return self.master.size if self.master else 0


@dataclass
class Plan:
    region: str
    statuses: list[ImageStatus]
    actions: list[Action]

    @property
    def nothing_pending(self) -> bool:
        return not any(s.status.startswith("pending_") for s in self.statuses)

    @property
    def upload_bytes(self) -> int:
        return sum(a.size for a in self.actions if a.kind in UPLOAD_KINDS)


def ami_refs(master: Image) -> dict[str, str]:
    return {p: master.user_properties[p] for p in AMI_PROPERTIES if p in master.user_properties}


def upload_properties(master: Image, metadata_set: frozenset[str]) -> dict[str, Any]:
    """All master properties when metadata_set is empty, else only its keys (6.3); never
    the reserved ``glancesync_*`` ones (reference 1.4)."""
    props = {
        k: v
        for k, v in master.user_properties.items()
        if k not in AMI_PROPERTIES and not is_reserved(k)
    }
    if metadata_set:
        props = {k: v for k, v in props.items() if k in metadata_set}
    return props


def updated_properties(master: Image, region: Image, metadata_set: frozenset[str]) -> dict:
    """reference 6.5: empty metadata_set copies everything; otherwise only its keys change.

    The reserved ``glancesync_*`` properties are left out: the backend keeps them (reference 1.4).
    """
    if not metadata_set:
        return upload_properties(master, metadata_set)
    props = {
        k: v
        for k, v in region.user_properties.items()
        if k not in AMI_PROPERTIES and not is_reserved(k)
    }
    for key in {k for k in metadata_set - set(AMI_PROPERTIES) if not is_reserved(k)}:
        if key in master.user_properties:
            props[key] = master.user_properties[key]
        else:
            props.pop(key, None)
    return props


def _update(kind: str, s: ImageStatus, target: Target) -> Action:
    props = updated_properties(s.master, s.region_image, target.metadata_set)
    return Action(
        kind,
        s.name,
        s.master,
        s.region_image,
        s.master.is_public,
        props,
        ami_refs(s.master),
        followed_attributes(s.master),
        s.members,
    )


def _upload(s: ImageStatus, target: Target) -> Action:
    props = upload_properties(s.master, target.metadata_set)
    return Action(
        _UPLOAD_KIND[s.status],
        s.name,
        s.master,
        s.region_image,
        s.master.is_public,
        props,
        ami_refs(s.master),
        members=s.members,
        convert_to=s.convert_to,
    )


def _late_references(uploads: list[Action], region_map: dict[str, Image]) -> list[Action]:
    """Uploads whose kernel/ramdisk is uploaded after them in this run (reference 6.3): fix
    them in pass 3."""
    later: list[Action] = []
    uploaded: set[str] = set()
    to_upload = {a.name for a in uploads}
    for action in uploads:
        pending_later = [
            ref
            for ref in action.ami_refs.values()
            if ref not in region_map and ref not in uploaded and ref in to_upload
        ]
        if pending_later:
            later.append(
                Action(
                    UPDATE_AMI,
                    action.name,
                    action.master,
                    None,
                    action.is_public,
                    dict(action.properties),
                    dict(action.ami_refs),
                )
            )
        uploaded.add(action.name)
    return later


def plan_region(
    region: str,
    status: RegionStatus,
    target: Target,
    obsolete: list[ObsoleteUpdate] = (),
) -> Plan:
    """Obsolete updates, then pass 1 (metadata), pass 2 (uploads, checksum warnings), pass 3."""
    actions = [
        Action(UPDATE_OBSOLETE, u.name, None, u.image, u.is_public, u.properties) for u in obsolete
    ]
    ordered = status.images  # already in (size, name) order
    actions += [
        _update(UPDATE_METADATA, s, target) for s in ordered if s.status == st.PENDING_METADATA
    ]
    pass2: list[Action] = []
    for s in ordered:
        if s.status in _UPLOAD_KIND:
            pass2.append(_upload(s, target))
        elif s.status == st.ERROR_CHECKSUM:
            kind = WARN_PROTECTED if s.protected else WARN_CHECKSUM
            pass2.append(Action(kind, s.name, s.master, s.region_image, convert_to=s.convert_to))
    uploads = [a for a in pass2 if a.kind in UPLOAD_KINDS]
    actions += pass2
    actions += [_update(UPDATE_AMI, s, target) for s in ordered if s.status == st.PENDING_AMI]
    actions += _late_references(uploads, status.region_map)
    return Plan(region, list(ordered), actions)
