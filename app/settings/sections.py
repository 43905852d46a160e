"""The service's settings and the plain sections of fiware-glancesync.cfg (BEHAVIOUR.md 11).

Everything the service reads from outside is gathered here once, so that a wrong setting
stops the server at start with one clear message instead of failing a request later.
``[openstack]``, the service's own connection, is ``app.settings.openstack``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import glancesync
from app.placement import Routes, RoutesError, parse_routes
from app.settings.openstack import OpenStackSettings
from app.settings.reader import Reader, SettingsError

# Release date of this version: the default of [glancesync] UPDATED.
RELEASE_DATE = "2026-11-24T00:00:00Z"


@dataclass(frozen=True)
class NotificationSettings:
    """[notifications]: the master Glance's message bus, read by ``manage.py listen``."""

    transport_url: str = field(default="", repr=False)  # may hold the broker password
    topics: tuple[str, ...] = ("notifications",)
    # The listener's own queue (oslo.messaging's pool) on Glance's exchange: the shared
    # ``notifications.info`` queue belongs to telemetry and is never ours to drain.
    pool: str = "glancesync"
    exchange: str = "glance"
    quiet: float = 2.0
    max_wait: float = 10.0


@dataclass(frozen=True)
class CelerySettings:
    """[celery]: with a BROKER_URL, syncs run on ``manage.py worker`` processes (issue 15)."""

    broker_url: str = field(default="", repr=False)  # may hold the broker password
    routes: Routes = Routes()
    metrics_port: int = 0  # a worker's own /metrics (0: none), for workers on other hosts


@dataclass(frozen=True)
class ScheduleSettings:
    """[schedule]: syncs the service starts by itself, every INTERVAL seconds or on CRON."""

    interval: float | None = None
    cron: str | None = None
    regions: tuple[str, ...] = ()  # empty: the CLI's default list (BEHAVIOUR.md 7.3)

    @property
    def enabled(self) -> bool:
        return self.interval is not None or self.cron is not None


@dataclass(frozen=True)
class Settings:
    settings_file: str
    logging_file: str
    openstack: OpenStackSettings
    owner: str = "Telefonica I+D"
    api_info_url: str = "http://docs.glancesync.apiary.io/#"
    version: str = glancesync.__version__
    status: str = "SUPPORTED"
    updated: str = RELEASE_DATE
    host: str = "0.0.0.0"
    port: int = 8080
    database_url: str = ""
    workers: int = 5
    pidfile: str = "tmp/processes.pid"
    loglevel: str = "info"
    drain_file: str = ""  # while this file exists, /healthcheck answers 503
    # [metrics] TOKEN: the Bearer token GET /metrics requires; empty: /metrics is open.
    metrics_token: str = field(default="", repr=False)
    notifications: NotificationSettings = NotificationSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    celery: CelerySettings = CelerySettings()
    # gthread workers: requests run in THREADS threads, so the arbiter's TIMEOUT (the
    # worker's own heartbeat) never kills a worker busy with a long request or sync.
    threads: int = 8
    timeout: int = 60
    graceful_timeout: int = 30
    pool_size: int = 5  # PostgreSQL connections per server process


def read_notifications(reader: Reader) -> NotificationSettings:
    section = "notifications"
    names = {}
    for key, default in (("POOL", NotificationSettings.pool), ("EXCHANGE", "glance")):
        names[key] = reader.get(section, key, default).strip()
        if not names[key]:
            raise SettingsError(
                f"ERROR: Key {key} in section [{section}] of {reader.path} must not be empty"
            )
    return NotificationSettings(
        transport_url=reader.get(section, "TRANSPORT_URL", ""),
        topics=reader.get_list(section, "TOPICS") or NotificationSettings.topics,
        pool=names["POOL"],
        exchange=names["EXCHANGE"],
        quiet=reader.get_seconds(section, "QUIET", NotificationSettings.quiet),
        max_wait=reader.get_seconds(section, "MAX_WAIT", NotificationSettings.max_wait),
    )


def read_schedule(reader: Reader) -> ScheduleSettings:
    from croniter import croniter

    section = "schedule"
    interval = reader.get_seconds(section, "INTERVAL", None)
    cron = reader.get(section, "CRON", "") or None
    where = f"in section [{section}] of {reader.path}"
    if interval is not None and cron is not None:
        raise SettingsError(f"ERROR: Set INTERVAL or CRON {where}, not both")
    if interval == 0:
        raise SettingsError(f"ERROR: Key INTERVAL {where} must be more than 0 seconds")
    if cron is not None and not croniter.is_valid(cron):
        raise SettingsError(f"ERROR: Key CRON {where} is not a valid cron expression: {cron!r}")
    return ScheduleSettings(interval, cron, reader.get_list(section, "REGIONS"))


def read_celery(reader: Reader) -> CelerySettings:
    try:
        routes = parse_routes(reader.get("celery", "ROUTES", ""))
    except RoutesError as exc:
        where = f"in section [celery] of {reader.path}"
        raise SettingsError(f"ERROR: Key ROUTES {where}: {exc}") from None
    port = reader.get_int("celery", "METRICS_PORT", 0)
    if not 0 <= port <= 65535:
        raise SettingsError(
            f"ERROR: Key METRICS_PORT in section [celery] of {reader.path} must be a port "
            f"number (1-65535, or 0 for none), not {port}"
        )
    return CelerySettings(reader.get("celery", "BROKER_URL", ""), routes, port)
