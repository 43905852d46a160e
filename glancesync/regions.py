"""Region names and region lists (reference 1.3 and 7.3)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from glancesync.errors import ConfigError


@dataclass(frozen=True, order=True)
class RegionRef:
    """A region of a target; ``full`` is the name used in logs, CSV files and the API."""

    target: str
    name: str

    @property
    def full(self) -> str:
        return self.name if self.target == "master" else f"{self.target}:{self.name}"


def parse_region(text: str, targets: Iterable[str]) -> RegionRef:
    """Split at the first ':'; an unknown target prefix is a configuration error."""
    if ":" not in text:
        return RegionRef("master", text)
    target, name = text.split(":", 1)
    if target not in set(targets):
        raise ConfigError(
            f"unknown target '{target}' in region name '{text}'", source="command line"
        )
    return RegionRef(target, name)


def check_region_args(args: Iterable[str], targets: Iterable[str]) -> None:
    """Raise the ConfigError of a region argument that cannot work, before any region is
    listed (a ``master:`` earlier in the list would otherwise contact Keystone first):
    an unknown target prefix, or a name that cannot be part of a file name (``--parallel``
    logs and backups are files named after the region)."""
    known = set(targets)
    for arg in args:
        if "/" in arg or "\0" in arg:
            raise ConfigError(
                f"region name {arg!r} must not contain '/' or NUL", source="command line"
            )
        if ":" not in arg:
            continue
        target = arg.split(":", 1)[0] if arg[:-1] else "master"
        if target not in known:
            raise ConfigError(
                f"unknown target '{target}' in region name '{arg}'", source="command line"
            )


def expand_target(
    target: str, regions: list[str], ignore: Iterable[str], master_region: str
) -> list[RegionRef]:
    """Every region of ``target`` minus its ignore_regions (and the master region for master)."""
    skipped = set(ignore)
    if target == "master":
        skipped.add(master_region)
    return [RegionRef(target, r) for r in regions if r not in skipped]


def order_by_preference(refs: list[RegionRef], preferable_order: Iterable[str]) -> list[RegionRef]:
    """Regions named in preferable_order first, in that order; the rest keep their order."""
    by_full = {ref.full: ref for ref in refs}
    first = []
    for name in preferable_order:
        ref = by_full.pop(name, None)
        if ref is not None:
            first.append(ref)
    return first + [ref for ref in refs if ref.full in by_full]


def region_list(
    args: list[str],
    targets: Iterable[str],
    regions_of: Callable[[str], list[RegionRef]],
    preferable_order: Iterable[str],
) -> list[RegionRef]:
    """The regions a command works on, from its arguments (7.3).

    ``regions_of(target)`` returns the expansion of ``target:``. Duplicates are kept
    once, at their first place.
    """
    targets = list(targets)
    if not args:
        return order_by_preference(regions_of("master"), preferable_order)
    refs: list[RegionRef] = []
    expanded = False
    for arg in args:
        if arg.endswith(":"):
            target = arg[:-1] or "master"
            if target not in targets:
                raise ConfigError(
                    f"unknown target '{target}' in region name '{arg}'", source="command line"
                )
            refs.extend(regions_of(target))
            expanded = True
        else:
            refs.append(parse_region(arg, targets))
    unique = list(dict.fromkeys(refs))
    return order_by_preference(unique, preferable_order) if expanded else unique
