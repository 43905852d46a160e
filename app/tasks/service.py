"""The runner in a serving process: built with the app, started on a migrated schema,
and the upkeep of the task table (recovery of dead tasks, pruning of old ones)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError

from app.models import FAILED, SYNCED, Task, db, db_now
from app.settings import SettingsError
from app.tasks.runner import EXTENSION, TaskRunner, runner

log = logging.getLogger("GlanceSync-API")


def lease_timing_problem(config: Mapping[str, Any]) -> str | None:
    """The one-line error of lease settings a serving process must refuse; None if fine.

    A runner stops its own sync ``DEAD_AFTER - 2 x HEARTBEAT_INTERVAL`` after its last
    renewal, so that it has stopped before any other process may fail the task and start
    the region again; under ``3 x HEARTBEAT_INTERVAL`` that leaves less than one interval
    to sync in between two renewals."""
    dead_after, interval = float(config["DEAD_AFTER"]), float(config["HEARTBEAT_INTERVAL"])
    if dead_after >= 3 * interval:
        return None
    return (
        f"ERROR: DEAD_AFTER ({dead_after:g} s) must be at least 3 x HEARTBEAT_INTERVAL "
        f"({3 * interval:g} s): a runner stops its sync DEAD_AFTER - 2 x HEARTBEAT_INTERVAL "
        "after its last renewal"
    )


def check_lease_timing(config: Mapping[str, Any]) -> None:
    """Raise the SettingsError of ``lease_timing_problem`` (a serving command stops)."""
    problem = lease_timing_problem(config)
    if problem is not None:
        raise SettingsError(problem)


def init_tasks(app: Flask) -> TaskRunner:
    runner_ = TaskRunner(
        app,
        app.config["SYNC_WORKERS"],
        app.config["HEARTBEAT_INTERVAL"],
        app.config["DEAD_AFTER"],
        app.config.get("PROGRESS_INTERVAL", 1.0),
        app.config.get("QUEUE_TIMEOUT", 3600.0),
        app.config.get("FINAL_WRITE_ATTEMPTS", 5),
    )
    app.extensions[EXTENSION] = runner_
    return runner_


def start_service(app: Flask) -> bool:
    """Run once by each serving process (runserver, every gunicorn worker), never by
    ``db upgrade`` or the other commands: recover dead tasks and start the lease loop,
    only on a database at the migration head. False when it did not start."""
    with app.app_context():
        try:
            if not schema_at_head(app):
                log.error(
                    "The database is not at the migration head: run `manage.py db upgrade`; "
                    "no task recovery and no lease loop until then"
                )
                return False
            count = runner().sweep()
        except SQLAlchemyError:
            log.exception("Recovery of interrupted tasks failed")
            db.session.rollback()
            return False
        finally:
            db.session.remove()
    if count:
        log.warning("%d interrupted task(s) marked failed at start", count)
    app.extensions[EXTENSION].start()
    return True


def schema_at_head(app: Flask) -> bool:
    """True when the database is at the head revision of migrations/ (``db upgrade`` done)."""
    config = Config()
    config.set_main_option("script_location", app.config["MIGRATIONS_DIR"])
    heads = set(ScriptDirectory.from_config(config).get_heads())
    with db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current == heads


def prune_finished(days: float) -> int:
    """Delete the synced/failed tasks not updated for ``days`` days (database clock);
    queued and syncing tasks are never touched. Returns how many went."""
    cutoff = db_now(db.session) - timedelta(days=days)
    result = db.session.execute(
        delete(Task).where(Task.status.in_((SYNCED, FAILED)), Task.updated < cutoff)
    )
    db.session.commit()
    return result.rowcount
