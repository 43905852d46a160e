"""Which Celery queue syncs which region: ``[celery] ROUTES`` (issue 15).

``ROUTES = Trento=east, other:Madrid=west, other:=west`` is one value: entries separated
by commas, each split at its LAST ``=`` (a region name may hold ``=``), names kept as
written. ``<target>:`` alone routes a whole target; a region route wins over its target's.
Unrouted regions go to the default queue. Pure logic: the names are checked against the
known targets and regions by ``unknown_names`` at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

DEFAULT_QUEUE = "glancesync"
MASTER = "master"


class RoutesError(ValueError):
    """A ROUTES value that cannot be read; the message names the bad entry."""


@dataclass(frozen=True)
class Routes:
    regions: dict[str, str] = field(default_factory=dict)  # full region name -> queue
    targets: dict[str, str] = field(default_factory=dict)  # target -> queue
    default: str = DEFAULT_QUEUE

    def queue_for(self, region: str) -> str:
        """The queue of a full region name (``Trento``, ``other:Madrid``)."""
        if region in self.regions:
            return self.regions[region]
        return self.targets.get(target_of(region), self.default)

    @property
    def queues(self) -> set[str]:
        return {self.default, *self.regions.values(), *self.targets.values()}


def target_of(region: str) -> str:
    return region.split(":", 1)[0] if ":" in region else MASTER


def parse_routes(text: str, default: str = DEFAULT_QUEUE) -> Routes:
    regions: dict[str, str] = {}
    targets: dict[str, str] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, queue = entry.rpartition("=")
        name, queue = name.strip(), queue.strip()
        if not sep or not name or not queue:
            raise RoutesError(f"entry {entry!r} is not <region>=<queue> or <target>:=<queue>")
        if name.endswith(":") and name.count(":") == 1:
            targets[name[:-1]] = queue
            continue
        if name.startswith(MASTER + ":"):
            name = name[len(MASTER) + 1 :]  # master:Trento is Trento, as in the API
        if name in regions and regions[name] != queue:
            raise RoutesError(f"region {name!r} is routed to two queues")
        regions[name] = queue
    return Routes(regions, targets, default)


def unknown_names(
    routes: Routes, targets: Iterable[str], regions_of: Callable[[str], list[str]]
) -> list[str]:
    """The routed targets and regions that do not exist (``regions_of(target)`` gives a
    target's full region names)."""
    known_targets = set(targets)
    unknown = [f"target {t!r}" for t in routes.targets if t not in known_targets]
    listed: dict[str, set[str]] = {}
    for region in routes.regions:
        target = target_of(region)
        if target not in known_targets:
            unknown.append(f"region {region!r} (no target {target!r})")
            continue
        if target not in listed:
            listed[target] = set(regions_of(target))
        if region not in listed[target]:
            unknown.append(f"region {region!r}")
    return unknown
