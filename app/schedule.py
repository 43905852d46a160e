"""[schedule]: syncs the service starts by itself, every INTERVAL seconds or on CRON.

Every server process (each gunicorn worker, on every host) runs a ``Scheduler`` thread,
but only the holder of the lease row in the database fires: it renews the lease every
tick, and another process takes it over once it has expired (its holder died). The run
itself is claimed by moving ``next_run`` on with a conditional UPDATE, so a run fires
once even if two processes briefly both think they hold the lease. Times come from the
database clock (D23): the hosts' clocks may disagree, the database's is one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from croniter import croniter
from flask import Flask
from sqlalchemy import String, inspect, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.autosync import SCHEDULE, automatic_regions, start_automatic
from app.models import MYSQL_DIALECTS, MYSQL_NOW, LeaseTime, db, utcnow
from app.settings import ScheduleSettings
from app.workers import new_worker

log = logging.getLogger("GlanceSync-API")
LEASE_NAME = "schedule"
EXTENSION = "glancesync.schedule"


class SchedulerLease(db.Model):
    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255), nullable=False)
    expires: Mapped[datetime] = mapped_column(LeaseTime, nullable=False)
    next_run: Mapped[datetime | None] = mapped_column(LeaseTime, nullable=True)
    last_run: Mapped[datetime | None] = mapped_column(LeaseTime, nullable=True)


def next_run_after(schedule: ScheduleSettings, moment: datetime) -> datetime:
    """The first run strictly after ``moment`` (naive UTC; cron fields are UTC too)."""
    if schedule.interval is not None:
        return moment + timedelta(seconds=schedule.interval)
    return croniter(schedule.cron, moment).get_next(datetime)


def db_now() -> datetime:
    """The database's clock, naive UTC."""
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        return db.session.execute(text("SELECT timezone('UTC', clock_timestamp())")).scalar_one()
    if dialect == "sqlite":
        value = db.session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
        return datetime.fromisoformat(value.scalar_one())
    if dialect in MYSQL_DIALECTS:
        return db.session.execute(text(MYSQL_NOW)).scalar_one()
    return utcnow()


def hold_lease(holder: str, now: datetime, ttl: float, schedule: ScheduleSettings) -> bool:
    """Take or renew the lease; True when ``holder`` has it until ``now + ttl``."""
    expires = now + timedelta(seconds=ttl)
    result = db.session.execute(
        update(SchedulerLease)
        .where(
            SchedulerLease.name == LEASE_NAME,
            or_(SchedulerLease.holder == holder, SchedulerLease.expires < now),
        )
        .values(holder=holder, expires=expires)
    )
    if result.rowcount:
        db.session.commit()
        return True
    if db.session.get(SchedulerLease, LEASE_NAME) is not None:
        db.session.rollback()
        return False
    first = next_run_after(schedule, now)
    db.session.add(SchedulerLease(name=LEASE_NAME, holder=holder, expires=expires, next_run=first))
    try:
        db.session.commit()
    except IntegrityError:  # another process created it first
        db.session.rollback()
        return False
    return True


def claim_run(holder: str, now: datetime, schedule: ScheduleSettings) -> datetime | None:
    """The due run (its planned time) when this holder claims it, else None."""
    planned = db.session.scalars(
        select(SchedulerLease.next_run).where(SchedulerLease.name == LEASE_NAME)
    ).first()
    if planned is not None and now < planned:
        db.session.rollback()
        return None
    condition = (
        SchedulerLease.next_run.is_(None) if planned is None else SchedulerLease.next_run == planned
    )
    result = db.session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == holder, condition)
        .values(next_run=next_run_after(schedule, now), last_run=now)
    )
    db.session.commit()
    return planned if result.rowcount and planned is not None else None


class Scheduler:
    """One per server process; fires ``on_fire`` when its lease holds and a run is due."""

    def __init__(
        self,
        app: Flask,
        schedule: ScheduleSettings,
        tick: float = 2.0,
        lease_seconds: float = 30.0,
        clock: Callable[[], datetime] = db_now,
        on_fire: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.schedule = schedule
        self.tick = tick
        self.lease_seconds = max(lease_seconds, 3 * tick)
        self.clock = clock
        self.on_fire = on_fire or self.fire
        self.holder = new_worker().name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        """One tick: renew or take the lease, fire when due. True when it fired."""
        with self.app.app_context():
            try:
                now = self.clock()
                if not hold_lease(self.holder, now, self.lease_seconds, self.schedule):
                    return False
                planned = claim_run(self.holder, now, self.schedule)
            finally:
                db.session.remove()
        if planned is None:
            return False
        log.info("Scheduled run of %s starts", planned.strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.on_fire()
        return True

    def fire(self) -> None:
        """One task per region of REGIONS, user ``schedule``."""
        with self.app.app_context():
            try:
                for region, _target in automatic_regions(self.schedule.regions):
                    start_automatic(region, SCHEDULE)
            except Exception:  # an unreachable Keystone: the next run tries again
                log.exception("The scheduled run could not start its syncs")
            finally:
                db.session.remove()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_once()
            except Exception:  # a database hiccup must not end the schedule
                log.exception("Scheduler round failed")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def start_scheduler(app: Flask) -> Scheduler | None:
    """The process's scheduler thread, when [schedule] asks for one and the schema exists."""
    schedule: ScheduleSettings = app.config["SETTINGS"].schedule
    if not schedule.enabled:
        return None
    with app.app_context():
        ready = inspect(db.engine).has_table(SchedulerLease.__tablename__)
        db.session.remove()
    if not ready:
        log.error("[schedule] is set but the database has no scheduler table: db upgrade")
        return None
    scheduler = Scheduler(
        app,
        schedule,
        tick=app.config.get("SCHEDULE_TICK", 2.0),
        lease_seconds=app.config.get("SCHEDULE_LEASE", 30.0),
    )
    app.extensions[EXTENSION] = scheduler
    scheduler.start()
    return scheduler
