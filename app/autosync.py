"""Syncs the service starts by itself (schedule, notifications): one door into the tasks.

Automatic syncs are ordinary tasks (same table, same runner, same rules, visible in the
API); only the task's user field differs: it names the origin.
"""

from __future__ import annotations

from app.regions import core
from app.tasks import start_sync
from glancesync.config import Target

SCHEDULE = "schedule"
NOTIFICATIONS = "notifications"


def start_automatic(region: str, origin: str) -> bool:
    """Start a sync of ``region`` for ``origin``; True when a sync that begins now (or
    later) will see the master as it is now. False when the region was already syncing
    and nothing was started: the caller tries again later. Needs an app context.

    Merge note: once tasks can be ``queued`` (at most one per region), point this at the
    queued-task creation and return True when a task was created or one is queued.
    """
    _task, created = start_sync(region, origin)
    return created


def automatic_regions(names: tuple[str, ...]) -> list[tuple[str, Target]]:
    """The full names of the configured list (empty: BEHAVIOUR.md 7.3's default), each
    with its target's configuration. Needs an app context; BackendError when a catalog
    cannot be read."""
    gs = core().glancesync()
    return [(ref.full, gs.config.targets[ref.target]) for ref in gs.region_list(list(names))]
