"""Reading what the member plans need: the master's and the region's members, and the
project mapping of ``members = by-name``. The planning itself is glancesync.members.

Members are not part of an image listing (one request per image), so they are read only
for shared master images and their region copies.
"""

from __future__ import annotations

from collections.abc import Mapping

from glancesync.backends.base import Backend
from glancesync.config import Target
from glancesync.errors import BackendError
from glancesync.image import Image
from glancesync.members import BY_NAME, NONE, MemberChanges, member_changes, members_mode
from glancesync.members import wanted_members as wanted_of
from glancesync.status import kept_copy


class MasterMembers:
    """The master images' members, read once per run and shared by every region."""

    def __init__(self, backend: Backend, region: str) -> None:
        self.backend, self.region = backend, region
        self._members: dict[str, dict[str, str]] = {}

    def of(self, image: Image) -> dict[str, str]:
        if image.id not in self._members:
            self._members[image.id] = self.backend.image_members(self.region, image.id)
        return self._members[image.id]


def _by_name(
    master: Backend, backend: Backend, projects: set[str], warnings: list[str], full: str
) -> dict[str, str | None]:
    """Master project id -> this target's project id (None: missing there). A Keystone
    that cannot answer leaves every member unmapped, with a warning: not a run error."""
    try:
        names = master.project_names(sorted(projects))
        wanted = sorted({n for n in names.values() if n})
        ids = backend.project_ids(wanted) if wanted else {}
    except BackendError as exc:
        warnings.append(f"{full}: the member projects cannot be mapped by name: {exc}")
        return {}
    return {pid: ids.get(name) if name else None for pid, name in names.items()}


def _may_accept(backend: Backend, target: Target, full: str, warnings: list[str]) -> bool:
    """``accept_members`` with credentials Glance lets set another project's membership
    (admin); without them one warning for the region, not a refusal per image."""
    if not target.accept_members:
        return False
    try:
        if backend.may_set_member_status():
            return True
        why = "they are not admin"
    except BackendError as exc:
        why = f"that cannot be told: {exc}"
    warnings.append(
        f"{full}: accept_members is set, but the credentials of target {target.name} may "
        f"not set member statuses ({why}); members are added pending and their statuses "
        "left as they are"
    )
    return False


def member_plans(
    masters: MasterMembers,
    backend: Backend,
    region: str,
    wanted: Mapping[str, Image],
    region_map: Mapping[str, Image],
    target: Target,
) -> tuple[dict[str, MemberChanges], list[str]]:
    """The member changes of each shared synchronisable image, and the warnings (members
    with no project in this target). Nothing is read when the target leaves members."""
    mode = members_mode(target.members, target.name == "master")
    shared = {name: m for name, m in wanted.items() if m.shared}
    if mode == NONE or not shared:
        return {}, []
    full, warnings = backend.full_name(region), []
    master_members = {name: masters.of(m) for name, m in shared.items()}
    mapping: dict[str, str | None] = {}
    if mode == BY_NAME:
        projects = {p for members in master_members.values() for p in members}
        mapping = _by_name(masters.backend, backend, projects, warnings, full) if projects else {}
    accept = _may_accept(backend, target, full, warnings)
    plans = {}
    for name, master in shared.items():
        members, unmapped = wanted_of(master_members[name], mode, mapping)
        copy = region_map.get(name)
        current = {}
        # a copy that is not shared yet has no members Glance would show (it refuses to
        # list them); a copy to be replaced hands none on to the new one
        if copy is not None and copy.shared and kept_copy(master, copy, target):
            current = backend.image_members(region, copy.id)
        plans[name] = member_changes(members, current, accept, unmapped)
        for project in unmapped:
            warnings.append(
                f"{full}: image {name} is shared with project {project}, which target "
                f"{target.name} does not have; not shared with it there"
            )
    return plans, warnings
