"""The invariants of the task lifecycle, checked by the model after every step.

Each check reads the task table and the world (tests/support/task_world.py) and asserts
on a line of its own, so hypothesis shrinks each broken invariant to its own smallest
counterexample. What a check remembers across steps (a row that became final, since
when a task has had no live runner) is kept in ``Observer``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select

from app.models import FAILED, QUEUED, SYNCED, SYNCING, Task, db
from tests.support.task_world import DEAD_AFTER, HEARTBEAT, SLOW_RENEWAL, World

FINAL = (SYNCED, FAILED)
# the lease loop of a process runs every HEARTBEAT; a slow renewal delays it that much
ROUND = HEARTBEAT + SLOW_RENEWAL
# With a broker a queued task's message may sit in the queue for a whole lease before it
# is taken for lost and published again (the first lease round after DEAD_AFTER does
# that, so that a busy worker's message is not duplicated every heartbeat), then a worker
# takes it: the bound is one lease and two rounds.
BROKER_ROUND = DEAD_AFTER + 2 * ROUND
INVARIANTS = (
    "one_per_region",
    "final_never_rewritten",
    "success_ends_synced",
    "claimed_is_launched",
    "dead_task_swept",
    "free_queued_claimed",
    "one_sync_per_task",
    "one_running_sync_per_region",
    "follow_up_not_expired",
    "engine_callbacks_work",
)


def read_rows(world: World) -> dict[str, dict]:
    with world.apps[0].app_context():
        rows = {
            task.task_id: {
                "region": task.region,
                "status": task.status,
                "message": task.message,
                "images": task.images,
                "updated": task.updated,
                "heartbeat": task.heartbeat,
                "progress": task.progress,
                "worker": task.worker,
                "cancel_requested": bool(task.cancel_requested),
            }
            for task in db.session.scalars(select(Task)).all()
        }
        db.session.remove()
    return rows


@dataclass
class Observer:
    world: World
    checked: frozenset[str] = frozenset(INVARIANTS)
    finals: dict[str, dict] = field(default_factory=dict)
    orphan_since: dict[str, float] = field(default_factory=dict)
    free_since: dict[str, float] = field(default_factory=dict)
    behind: set[str] = field(default_factory=set)  # queued tasks last seen behind a sync

    def check(self) -> None:
        rows = read_rows(self.world)
        busy = {r["region"] for r in rows.values() if r["status"] == SYNCING}
        for task_id, row in rows.items():
            if row["status"] == QUEUED:
                (self.behind.add if row["region"] in busy else self.behind.discard)(task_id)
        for name in INVARIANTS:
            if name in self.checked:
                getattr(self, name)(rows)
        self.finals.update({k: row for k, row in rows.items() if row["status"] in FINAL})

    # -- helpers --------------------------------------------------------------------------
    def holder(self, task_id: str, row: dict):
        """The process that runs the task and still holds its lease, if it is not frozen."""
        for process in self.world.live():
            runner = process.runner
            live = runner.live(task_id)
            held = live is not None and live.claimed and not live.lost.is_set()
            if held and runner.worker.name == row["worker"]:
                return process
        return None

    def pending(self, index: int) -> set[str]:
        return {t for job in self.world.jobs if job.slot == index for t, _ in job.members}

    # -- the invariants of issue 21 -----------------------------------------------------------
    def one_per_region(self, rows: dict[str, dict]) -> None:
        counts = Counter((r["region"], r["status"]) for r in rows.values())
        twice = {key: n for key, n in counts.items() if key[1] in (QUEUED, SYNCING) and n > 1}
        assert not twice, f"one_per_region: {twice}"

    def final_never_rewritten(self, rows: dict[str, dict]) -> None:
        changed = {k: (old, rows.get(k)) for k, old in self.finals.items() if rows.get(k) != old}
        assert not changed, f"final_never_rewritten: {changed}"

    def success_ends_synced(self, rows: dict[str, dict]) -> None:
        running = {t for job in self.world.jobs for t, _ in job.members}
        lost = {
            task_id: rows[task_id]
            for task_id in self.world.succeeded - running
            if rows[task_id]["status"] != SYNCED and not rows[task_id]["cancel_requested"]
        }
        assert not lost, f"success_ends_synced: a successful sync did not end synced: {lost}"

    def claimed_is_launched(self, rows: dict[str, dict]) -> None:
        stranded = []
        for process in self.world.processes:
            jobs = self.pending(process.index)
            for task_id in process.runner.owned():
                live = process.runner.live(task_id)
                if live is not None and live.claimed and task_id not in jobs:
                    stranded.append((process.index, task_id, rows.get(task_id, {}).get("status")))
        assert not stranded, f"claimed_is_launched: claimed, neither launched nor ended: {stranded}"

    def dead_task_swept(self, rows: dict[str, dict]) -> None:
        now, late = self.world.clock.now, []
        for task_id, row in rows.items():
            if row["status"] != SYNCING or self.holder(task_id, row) is not None:
                self.orphan_since.pop(task_id, None)
                continue
            since = self.orphan_since.setdefault(task_id, now)
            if now - since > DEAD_AFTER + ROUND:
                late.append((task_id, row["region"], row["worker"], now - since))
        assert not late, f"dead_task_swept: syncing without a live runner too long: {late}"

    def free_queued_claimed(self, rows: dict[str, dict]) -> None:
        now, waiting = self.world.clock.now, []
        busy = {r["region"] for r in rows.values() if r["status"] == SYNCING}
        if not any(len(p.runner.owned()) < p.runner.max_workers for p in self.world.live()):
            busy = {r["region"] for r in rows.values()}  # no process has room: none can claim
        in_queue = {task_id for _, members in self.world.messages for task_id, _ in members}
        for task_id, row in rows.items():
            if row["status"] != QUEUED or row["region"] in busy or task_id in in_queue:
                # with a broker, a message in the queue is the claim to come: a worker
                # takes it when the model delivers it
                self.free_since.pop(task_id, None)
                continue
            since = self.free_since.setdefault(task_id, now)
            if now - since > (BROKER_ROUND if self.world.broker else ROUND):
                waiting.append((task_id, row["region"], now - since))
        assert not waiting, f"free_queued_claimed: queued in a free region too long: {waiting}"

    # -- two more the model gets for free -----------------------------------------------------
    def one_sync_per_task(self, rows: dict[str, dict]) -> None:
        twice = {task_id: n for task_id, n in self.world.runs.items() if n > 1}
        assert not twice, f"one_sync_per_task: a task's sync ran twice: {twice}"

    def one_running_sync_per_region(self, rows: dict[str, dict]) -> None:
        going: Counter = Counter()
        for job in self.world.jobs:
            process = self.world.processes[job.slot]
            if process.frozen:
                continue
            for task_id, region in job.members:
                live = process.runner.live(task_id)
                if live is not None and not live.should_stop():
                    going[region] += 1
        both = {region: n for region, n in going.items() if n > 1}
        assert not both, f"one_running_sync_per_region: two syncs of a region go on: {both}"

    def follow_up_not_expired(self, rows: dict[str, dict]) -> None:
        """QUEUE_TIMEOUT is for a task nobody claims, not one waiting behind a long sync."""
        expired = [
            task_id
            for task_id, row in rows.items()
            if task_id in self.behind and (row["message"] or "").startswith("Not started")
        ]
        assert not expired, f"follow_up_not_expired: failed while waiting behind a sync: {expired}"

    def engine_callbacks_work(self, rows: dict[str, dict]) -> None:
        """What the service hands the engine (``runs.is_dead``) works in the engine's threads."""
        errors = self.world.engine_errors
        assert not errors, f"engine_callbacks_work: {errors}"
