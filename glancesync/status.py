"""The status of every synchronisable image in a region (reference 5).

Pure: master images, the region map and the target's rules in; statuses out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from glancesync import converted
from glancesync.config import Target
from glancesync.image import AMI_PROPERTIES, Image, followed_attributes, is_reserved, same_content
from glancesync.members import MemberChanges

OK = "ok"
OK_STALLED = "ok_stalled_checksum"
ERROR_CHECKSUM = "error_checksum"
ERROR_AMI = "error_ami"
PENDING_METADATA = "pending_metadata"
PENDING_UPLOAD = "pending_upload"
PENDING_REPLACE = "pending_replace"
PENDING_RENAME = "pending_rename"
PENDING_AMI = "pending_ami"

STATUSES = (
    OK,
    OK_STALLED,
    ERROR_CHECKSUM,
    ERROR_AMI,
    PENDING_METADATA,
    PENDING_UPLOAD,
    PENDING_REPLACE,
    PENDING_RENAME,
    PENDING_AMI,
)
FINAL = frozenset({OK, OK_STALLED})
ERRORS = frozenset({ERROR_CHECKSUM, ERROR_AMI})
NEW_DATA = frozenset({PENDING_UPLOAD, PENDING_REPLACE, PENDING_RENAME})

_EQUAL, _DIFFERS = "equal", "differs"
_READY, _UPDATE, _PENDING, _MISSING = "ready", "update", "pending", "missing"


@dataclass
class ImageStatus:
    """One synchronisable master image and what the region has of it.

    ``region_image`` is the region's image of that name (the old one for replace and
    rename). ``waits_for`` / ``missing`` name the kernel or ramdisk images behind
    ``pending_ami`` / ``error_ami``.
    """

    name: str
    status: str
    master: Image
    region_image: Image | None = None
    waits_for: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    protected: bool = False  # error_checksum because the image to replace is protected
    # the members a sync adds, removes or changes (glancesync.members); None: not shared
    members: MemberChanges | None = None
    # The format the copy is converted to ("" for a plain copy); ``master`` is then the
    # master without its signature properties (glancesync.converted).
    convert_to: str = ""
    # Configured stores the region's copy is not in (glancesync.stores): a sync copies it.
    missing_stores: tuple[str, ...] = ()

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.master.size, self.name)


@dataclass
class RegionStatus:
    """Statuses in (size, name) order, plus the region map after phase A removals."""

    images: list[ImageStatus]
    region_map: dict[str, Image]
    pending: frozenset[str]

    def by_name(self) -> dict[str, ImageStatus]:
        return {s.name: s for s in self.images}


def conflict_status(region_checksum: str, target: Target) -> str:
    """reference 5.3: explicit checksums beat ``any``; rename beats replace."""
    c = region_checksum
    if c in target.dontupdate:
        return OK_STALLED
    if c in target.rename:
        return PENDING_RENAME
    if c in target.replace:
        return PENDING_REPLACE
    if "any" in target.rename:
        return PENDING_RENAME
    if "any" in target.replace:
        return PENDING_REPLACE
    return ERROR_CHECKSUM


def metadata_differs(master: Image, region: Image, metadata_set: frozenset[str]) -> bool:
    """5.4 and reference 5.2; kernel_id/ramdisk_id values are left to the AMI check, and the
    reserved ``glancesync_*`` properties are never compared (reference 1.4)."""
    if master.is_public != region.is_public or master.shared != region.shared:
        return True
    if followed_attributes(master) != followed_attributes(region):
        return True
    mp = {k: v for k, v in master.user_properties.items() if not is_reserved(k)}
    rp = {k: v for k, v in region.user_properties.items() if not is_reserved(k)}
    if any((p in mp) != (p in rp) for p in AMI_PROPERTIES):
        return True
    if metadata_set:
        keys = {k for k in metadata_set - set(AMI_PROPERTIES) if not is_reserved(k)}
        return any(mp.get(k, _ABSENT) != rp.get(k, _ABSENT) for k in keys)
    if mp.keys() != rp.keys():
        return True
    return any(mp[k] != rp[k] for k in mp if k not in AMI_PROPERTIES)


_ABSENT = object()


def ami_check(
    master: Image, region: Image, region_map: dict[str, Image], pending: frozenset[str]
) -> tuple[str, list[str], list[str]]:
    """5.5: combined result, plus the names waited for and the names missing."""
    results, waits, missing = [], [], []
    for prop in AMI_PROPERTIES:
        if prop not in master.user_properties:
            results.append(_UPDATE if prop in region.user_properties else _READY)
            continue
        wanted = master.user_properties[prop]
        if wanted in region_map:
            ok = region.user_properties.get(prop) == region_map[wanted].id
            results.append(_READY if ok else _UPDATE)
        elif wanted in pending:
            results.append(_PENDING)
            waits.append(wanted)
        else:
            results.append(_MISSING)
            missing.append(wanted)
    if results[0] == results[1]:
        return results[0], waits, missing
    for outcome in (_MISSING, _PENDING):
        if outcome in results:
            return outcome, waits, missing
    return _UPDATE, waits, missing


def _conflict(name: str, master: Image, region: Image, target: Target, fmt: str) -> ImageStatus:
    """5.3, and reference 5.2: Glance refuses to delete a protected image, so it is never replaced
    (refused before anything is uploaded); renaming it is allowed. A converted copy is
    looked up by the checksum it was converted from."""
    status = conflict_status(converted.rule_checksum(region), target)
    if status == PENDING_REPLACE and region.protected:
        return ImageStatus(name, ERROR_CHECKSUM, master, region, protected=True, convert_to=fmt)
    return ImageStatus(name, status, master, region, convert_to=fmt)


def _same_content(master: Image, region: Image, fmt: str) -> bool:
    if fmt:
        return converted.same_converted_content(master, region, fmt)
    return same_content(master, region)


def kept_copy(master: Image, region: Image, target: Target) -> bool:
    """The region copy stays (its content is the master's, maybe converted): what is
    compared against it, its members too, is then its own; otherwise a new copy comes."""
    return _same_content(master, region, converted.conversion_of(master, target.convert_to))


_AMI_TABLE = {
    (_EQUAL, _READY): OK,
    (_EQUAL, _UPDATE): PENDING_METADATA,
    (_DIFFERS, _READY): PENDING_METADATA,
    (_DIFFERS, _UPDATE): PENDING_METADATA,
}


def region_status(
    wanted: dict[str, Image],
    region_map: dict[str, Image],
    target: Target,
    unresolved: frozenset[str] = frozenset(),
    members: Mapping[str, MemberChanges] | None = None,
) -> RegionStatus:
    """Two phases (reference 5.1): content first, then AMI checks against the complete
    pending set.

    ``members``: the member changes of shared images by name; a change is a metadata
    difference."""
    members = members or {}
    remaining = dict(region_map)
    statuses: list[ImageStatus] = []
    phase_a: dict[str, str] = {}
    for name, master in sorted(wanted.items(), key=lambda kv: (kv[1].size, kv[0])):
        region = region_map.get(name)
        fmt = converted.conversion_of(master, target.convert_to)
        if fmt:
            master = converted.master_view(master)
        if name in unresolved:
            status = ImageStatus(name, ERROR_AMI, master, region, convert_to=fmt)
        elif region is None:
            status = ImageStatus(name, PENDING_UPLOAD, master, convert_to=fmt)
        elif not _same_content(master, region, fmt):
            status = _conflict(name, master, region, target, fmt)
            if status.status in (PENDING_REPLACE, PENDING_RENAME):
                remaining.pop(name, None)
        else:
            differs = metadata_differs(master, region, target.metadata_set)
            differs = differs or bool(members.get(name))
            phase_a[name] = _DIFFERS if differs else _EQUAL
            status = ImageStatus(name, "", master, region, convert_to=fmt)
        status.members = members.get(name)
        statuses.append(status)
    pending = frozenset(s.name for s in statuses if s.status in NEW_DATA)
    for status in statuses:
        if status.name not in phase_a:
            continue
        result, status.waits_for, status.missing = ami_check(
            status.master, status.region_image, remaining, pending
        )
        if result == _PENDING:
            status.status = PENDING_AMI
        elif result == _MISSING:
            status.status = ERROR_AMI
        else:
            status.status = _AMI_TABLE[(phase_a[status.name], result)]
    return RegionStatus(statuses, remaining, pending)
