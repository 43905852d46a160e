"""Fan-out groups: ``POST /v1/tasks`` syncs several regions as one group (issue 14).

Three tasks created by three ``POST /v1/regions/<r>/tasks`` each read the master on their
own: three master reads of every image they share. A group is one task per region like
those (same table, same routes for progress, result and cancel) whose syncs run in ONE
``GlanceSync.sync_regions`` call, so each shared master image is read once and streamed
to every region of the group at that region's own pace (``glancesync.fanout``).

The request is validated all or nothing before any task exists (400 for a malformed body,
410 naming the first unknown region or target). Regions already syncing keep their task,
which is answered as it is and is not part of the group.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from app import leases
from app.errors import ApiError, unavailable
from app.models import FAILED, Task, db
from app.regions import core
from app.tasks.creation import start_sync
from app.tasks.live import LiveTask
from app.tasks.runner import TASK_RUN, TaskRunner, outcome, runner
from glancesync.batch import SyncOptions
from glancesync.errors import BackendError, ConfigError, kind_of
from glancesync.leftovers import Runs
from glancesync.regions import RegionRef
from glancesync.result import RegionResult

log = logging.getLogger("GlanceSync-API")
ALL = "all"
NOT_STARTED = "Not started: the group could not start"
MALFORMED = (
    'The body must be a JSON object {"regions": [...]}: a non-empty list of region names '
    '(or "target:" expansions), or "all"'
)


# -- the request ---------------------------------------------------------------------------
def requested(body: Any) -> list[str] | str:
    """The ``regions`` member, checked for shape only (400 otherwise)."""
    regions = body.get("regions") if isinstance(body, dict) else None
    if regions == ALL:
        return ALL
    if not isinstance(regions, list) or not regions:
        raise ApiError(400, MALFORMED)
    if not all(isinstance(name, str) and name.strip() for name in regions):
        raise ApiError(400, MALFORMED)
    return [name.strip() for name in regions]


def resolve_group(regions: list[str] | str) -> list[str]:
    """Full region names, each once, in request order (or ``preferable_order`` once a
    ``target:`` was expanded, as the command line does, reference 7.3); 410 names the
    first entry that is no known region."""
    gs = core().glancesync()
    args = [] if regions == ALL else list(regions)
    for arg in args:
        _check_entry(arg, gs.config.targets)
    try:
        refs = gs.region_list(args)
    except ConfigError as exc:
        raise ApiError(410, str(exc)) from None
    except BackendError as exc:
        raise unavailable("The Keystone of a target", exc) from None
    known = set(core().regions())
    for ref in refs:
        if ref.full not in known:
            raise ApiError(410, f"Unknown region: {ref.full}")
    return [ref.full for ref in refs]


def _check_entry(arg: str, targets: Iterable[str]) -> None:
    if arg.endswith(":"):
        if (arg[:-1] or "master") not in targets:
            raise ApiError(410, f"Unknown target: {arg}")
        return
    prefix, sep, name = arg.partition(":")
    if sep and (prefix not in targets or not name):
        raise ApiError(410, f"Unknown region: {arg}")


def start_group(regions: list[str], user: str) -> list[tuple[Task, bool]]:
    """Each region's task: new ones are claimed here and run as one group; a region
    already syncing (or queued) answers with its task, which is not part of the group.
    With a Celery broker the new (queued) tasks are published as one group per queue:
    each queue's worker claims its members and fans out there (``app/broker.py``).

    The group runs exactly the tasks this thread claimed (``take_claims``): one that the
    lease loop claimed between its creation and our claim already runs alone. An error
    half way ends (or withdraws) what was claimed or created before it."""
    tasks_runner = runner()
    tasks: list[tuple[Task, bool]] = []
    try:
        for region in regions:
            tasks.append(start_sync(region, user, launch=False))
    except BaseException as exc:
        abandon(tasks_runner, tasks, exc)
        raise
    created = [(task.task_id, task.region) for task, new in tasks if new]
    if created and tasks_runner.dispatch_group is not None:
        publish_group(tasks_runner, created)
        return [(leases.task_by_id(task.task_id) or task, new) for task, new in tasks]
    claimed = tasks_runner.take_claims()
    if claimed:
        tasks_runner.submit(run_group, tasks_runner, claimed)
    return tasks


def abandon(tasks_runner: TaskRunner, tasks: list[tuple[Task, bool]], exc: BaseException) -> None:
    """A group that cannot start: its claimed tasks end ``failed`` saying why, its new
    tasks still queued (a broker's, not yet published) are withdrawn: none is left
    ``syncing`` with no thread to run it, nor queued with no message."""
    message = f"{NOT_STARTED}: {describe(exc)}"
    started, lease = time.monotonic(), tasks_runner.dead_after.total_seconds()
    for task_id, region in tasks_runner.take_claims():
        live = tasks_runner.live(task_id) or LiveTask(region, lease)
        tasks_runner.end_task(task_id, live, FAILED, message, [], started)
    if tasks_runner.dispatch_group is not None:
        for task, new in tasks:
            if new:
                leases.withdraw(task.task_id)


def describe(exc: BaseException) -> str:
    return exc.description if isinstance(exc, ApiError) else str(exc) or type(exc).__name__


def publish_group(tasks_runner: TaskRunner, members: list[tuple[str, str]]) -> None:
    """The group's messages; a broker that cannot be reached withdraws its tasks (503)."""
    try:
        tasks_runner.dispatch_group(members)
    except ApiError:
        for task_id, _region in members:
            leases.withdraw(task_id)
        raise


# -- the run ---------------------------------------------------------------------------------
def run_group(tasks_runner: TaskRunner, members: list[tuple[str, str]]) -> None:
    """Sync every member region in one ``sync_regions`` call; each task ends as its region
    ends (the runner's conditional final write), and every task ends, whatever happens.

    The group's uploads are marked with its first task's run id: its other regions are
    held by their own leases and region locks while they run, so no other service task
    can take that mark for a dead run's."""
    app = tasks_runner.app
    started = time.monotonic()
    ids = {region: task_id for task_id, region in members}
    lives = {
        region: tasks_runner.live(task_id) or LiveTask(region, tasks_runner.own_lease)
        for task_id, region in members
    }
    ended: set[str] = set()

    def on_done(ref: RegionRef, result: RegionResult) -> None:
        ended.add(ref.full)
        lives[ref.full].error_kinds = result.error_kinds()
        status, message, images = outcome(result)
        tasks_runner.end_task(ids[ref.full], lives[ref.full], status, message, images, started)

    try:
        with app.app_context():
            gs = core().glancesync()
            options = SyncOptions(
                max_workers=len(ids),
                progress=_Progress(lives),
                on_done=on_done,
                cancel=lambda ref: lives[ref.full].should_stop(),
                runs=Runs(run_id=f"{TASK_RUN}{members[0][0]}", is_dead=tasks_runner.run_is_dead),
            )
            gs.sync_regions(list(ids), options)
            db.session.remove()
    except Exception as exc:  # every failure must end the tasks, never leave them syncing
        message = describe(exc)
        log.exception("Fan-out group %s failed", sorted(ids))
        for region in set(ids) - ended:
            lives[region].tracker.fail_unfinished()
            lives[region].error_kinds = [kind_of(exc)]
            tasks_runner.end_task(ids[region], lives[region], FAILED, message, [], started)


class _Progress:
    """One progress factory for the group that hands each region's uploads to its task."""

    def __init__(self, lives: dict[str, LiveTask]):
        self._lives = lives

    def __call__(self, region: str, name: str, size: int) -> Callable[[int], None]:
        return self._lives[region].tracker(region, name, size)

    def planned(self, region: str, nbytes: int) -> None:
        self._lives[region].tracker.planned(region, nbytes)

    def ended(self, region: str, failed_image: str | None) -> None:
        self._lives[region].tracker.ended(region, failed_image)
