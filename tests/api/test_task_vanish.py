"""Schemathesis once saw "a DELETE of the task just returned by a POST answered 404"
(issue 22 item 4). Sequentially the sequence is right (tests/api/test_edges.py). This is
the interleaving that made a handed-out task vanish: a creator withdrew its queued task
after another creator had been handed it (app/tasks/creation.py, ``start_sync``: the
follow-up branch here; with Celery a plain POST whose two reads straddle another sync's
claim was handed the queued task the same way). A task handed out is now marked
(``handed_out``, migration 0006) and its creator's withdrawal spares it."""

from __future__ import annotations

from app.models import QUEUED
from app.tasks import TaskRunner, start_sync
from tests.support.task_rows import add_task, stored


def test_a_task_handed_to_a_caller_is_never_withdrawn(app, monkeypatch):
    handed: list[str] = []
    original = TaskRunner.try_claim

    def claim_while_another_sync_starts(self, task_id, region, launch=True):
        if handed:
            return original(self, task_id, region, launch)
        # Between this creator's read and its claim, another process starts a sync of
        # the region, and a notification asks for a follow-up sync: it is handed the
        # queued task of this creator...
        add_task(app, region, "otherhost:4242", age=0)
        with app.app_context():
            task, created = start_sync(region, "notifications", follow_up=True)
            handed.append(task.task_id)
        return False  # ...so this claim fails: the region is busy

    monkeypatch.setattr(TaskRunner, "try_claim", claim_while_another_sync_starts)
    with app.app_context():
        start_sync("Burgos", "alice")
    assert handed
    assert stored(app, handed[0]).status == QUEUED  # the task handed out still exists
