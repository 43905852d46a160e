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


def start_automatic(region: str, origin: str) -> None:
    """Make sure a sync of ``region`` starts after now, for ``origin``: a new task, or,
    when the region is syncing, one ``queued`` task behind it (at most one per region),
    so the change that triggered this is seen. Needs an app context."""
    start_sync(region, origin, follow_up=True)


def automatic_regions(names: tuple[str, ...]) -> list[tuple[str, Target]]:
    """The full names of the configured list (empty: reference 7.3's default), each
    with its target's configuration. Needs an app context; BackendError when a catalog
    cannot be read."""
    gs = core().glancesync()
    return [(ref.full, gs.config.targets[ref.target]) for ref in gs.region_list(list(names))]
