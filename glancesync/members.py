"""The members of shared images: which projects a region copy must be shared with.

Pure: the master image's members, the target's ``members`` mode, a project mapping and
the region copy's members in; the changes a sync makes out. A ``shared`` master image is
copied ``shared`` and its region copies get its members (README "Members of shared
images"): in the regions of the master's own target the same project ids (one Keystone),
in another target only with ``members = by-name``, mapped by project and domain name.

A member's acceptance is the member project's own decision: members are added as
``pending`` and their status is left alone, unless ``accept_members`` asks glancesync to
copy the master's statuses (which Glance allows to admin credentials only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SAME, BY_NAME, NONE = "same", "by-name", "none"
MODES = (SAME, BY_NAME, NONE)
PENDING = "pending"

# A project as another Keystone knows it: (project name, domain name).
ProjectName = tuple[str, str]


def members_mode(option: str | None, master_target: bool) -> str:
    """The option's value, or its default: ``same`` in the master's own target (the
    project ids mean the same projects there), ``none`` elsewhere."""
    if option:
        return option
    return SAME if master_target else NONE


@dataclass(frozen=True)
class MemberChanges:
    """What a sync does to one region copy's members (empty: nothing).

    ``add`` maps each new member to the status it gets; ``status`` maps existing members
    to the status they get (``accept_members`` only); ``unmapped`` names the master's
    members that have no project in this target (warnings, never an error).
    """

    add: dict[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    status: dict[str, str] = field(default_factory=dict)
    unmapped: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.remove or self.status)

    def describe(self) -> str:
        """``add p1, p2; remove p3; status p4 accepted``: what the message and the log say."""
        parts = []
        if self.add:
            parts.append("add " + ", ".join(sorted(self.add)))
        if self.remove:
            parts.append("remove " + ", ".join(sorted(self.remove)))
        if self.status:
            parts.append("status " + ", ".join(f"{p} {s}" for p, s in sorted(self.status.items())))
        return "; ".join(parts)


def wanted_members(
    master_members: Mapping[str, str],
    mode: str,
    mapping: Mapping[str, str | None] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The region's members (project id -> the master's status) and the master members
    that could not be mapped. ``mapping`` (by-name) maps master project ids to this
    target's project ids, None when the project is missing there."""
    if mode == NONE:
        return {}, []
    if mode == SAME:
        return dict(master_members), []
    wanted, unmapped = {}, []
    for project, status in master_members.items():
        mapped = (mapping or {}).get(project)
        if mapped:
            wanted[mapped] = status
        else:
            unmapped.append(project)
    return wanted, sorted(unmapped)


def member_changes(
    wanted: Mapping[str, str],
    current: Mapping[str, str],
    accept: bool,
    unmapped: list[str] | tuple[str, ...] = (),
) -> MemberChanges:
    """Add the missing members, remove the extra ones; statuses follow the master only
    with ``accept`` (a new member is added ``pending`` and then given its status)."""
    add = {p: (s if accept else PENDING) for p, s in wanted.items() if p not in current}
    remove = tuple(sorted(p for p in current if p not in wanted))
    status = {}
    if accept:
        status = {p: s for p, s in wanted.items() if p in current and current[p] != s}
    return MemberChanges(add, remove, status, tuple(unmapped))
