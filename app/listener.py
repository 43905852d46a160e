"""``manage.py listen``: syncs within seconds of a change in the master Glance.

Glance publishes its notifications on the message bus; oslo.messaging's notification
listener (OpenStack's own client for them) delivers each one to ``Endpoint.info``. The
``EventFilter`` says which regions need a sync, the ``Debouncer`` turns a burst of
events into one sync per region, and a trigger thread starts the due syncs as ordinary
tasks (user ``notifications``) in this process's own task runner.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from flask import Flask

from app.autosync import NOTIFICATIONS, automatic_regions, start_automatic
from app.debounce import Debouncer
from app.errors import ApiError
from app.events import EventFilter
from app.oslo_config import service_conf
from app.regions import core
from app.settings import NotificationSettings, SettingsError
from app.tasks import EXTENSION as RUNNER
from app.tasks import start_service
from glancesync.errors import BackendError, ConfigError

log = logging.getLogger("GlanceSync-API")
RETRY_SETUP = 5.0  # seconds between attempts to read the catalogs at start
STOP_TIMEOUT = 60.0  # seconds a SIGTERM waits for the consumer and the running syncs


class Endpoint:
    """Receives the ``info`` notifications (Glance sends all its image events so)."""

    def __init__(self, on_event: Callable[[str, Any], None]) -> None:
        self.on_event = on_event

    def info(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any):
        try:
            self.on_event(event_type, payload)
        except Exception:  # a bad event must not stop the listener
            log.exception("Notification %s could not be handled", event_type)


def _oslo_messaging() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eventlet's deprecation, imported but not used
        import oslo_messaging
    return oslo_messaging


def broker_reachable(url: str, conf: Any, timeout: float = 2.0) -> bool:
    """A TCP connection to one of the URL's hosts: oslo.messaging's own first connection
    retries forever and could not be interrupted by SIGTERM."""
    oslo_messaging = _oslo_messaging()
    for host in oslo_messaging.TransportURL.parse(conf, url).hosts:
        try:
            socket.create_connection((host.hostname, host.port or 5672), timeout).close()
            return True
        except OSError:
            continue
    return False


def oslo_listener(settings: NotificationSettings, endpoint: Endpoint, conf: Any) -> Any:
    """A started-later oslo.messaging notification listener for the configured topics.

    It consumes a queue of its own (the pool ``[notifications] POOL``) bound to Glance's
    exchange: without a pool it would share ``notifications.info`` with telemetry, and
    the two would split the master's events between them. ``conf`` holds the cfg's
    ``[oslo_messaging_rabbit]`` (TLS, quorum queues, heartbeats)."""
    oslo_messaging = _oslo_messaging()
    transport = oslo_messaging.get_notification_transport(conf, url=settings.transport_url)
    targets = [
        oslo_messaging.Target(topic=topic, exchange=settings.exchange) for topic in settings.topics
    ]
    return oslo_messaging.get_notification_listener(
        transport, targets, [endpoint], executor="threading", pool=settings.pool
    )


class Listener:
    """The listen process: notifications in, debounced region syncs out."""

    def __init__(self, app: Flask, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.settings: NotificationSettings = app.config["SETTINGS"].notifications
        if not self.settings.transport_url:
            raise SettingsError(
                "ERROR: manage.py listen needs [notifications] TRANSPORT_URL in "
                f"{app.config['SETTINGS'].settings_file}"
            )
        self.conf = service_conf(app)  # an unreadable cfg stops ``listen`` here
        self.debouncer = Debouncer(self.settings.quiet, self.settings.max_wait, clock)
        self.clock = clock
        self.filter: EventFilter | None = None
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._oslo: Any = None
        self._trigger: threading.Thread | None = None
        self._life = threading.Lock()  # start and stop never interleave

    # -- events --------------------------------------------------------------------------
    def on_event(self, event_type: str, payload: Any) -> None:
        assert self.filter is not None
        with self._wake:
            decision = self.filter.decide(event_type, payload)
            if decision.log:
                log.warning(decision.log)
            if decision.regions:
                log.info("%s of %s: sync %s", event_type, _name(payload), list(decision.regions))
                self.debouncer.add(decision.regions)
                self._wake.notify()

    # -- life ----------------------------------------------------------------------------
    def start(self) -> None:
        """Join the task leases (sweep, claim queued tasks), read the master project and
        the region list, then consume the notifications."""
        start_service(self.app)
        self.filter = self._event_filter()
        url = self.settings.transport_url
        while not self._stop.is_set() and not broker_reachable(url, self.conf):
            log.error("The message broker of [notifications] TRANSPORT_URL is unreachable")
            self._stop.wait(RETRY_SETUP)
        with self._life:
            if self.filter is None or self._stop.is_set():
                return
            self._trigger = threading.Thread(target=self._trigger_loop, name="listen-trigger")
            self._trigger.start()
            self._oslo = oslo_listener(self.settings, Endpoint(self.on_event), self.conf)
            self._oslo.start()
        regions = [region for region, _ in self.filter.regions]
        log.info("Listening to the master's notifications; regions %s", regions)

    def _event_filter(self) -> EventFilter | None:
        """Retries while Keystone or a catalog cannot be read (stopped when asked to)."""
        while not self._stop.is_set():
            with self.app.app_context():
                try:
                    gs = core().glancesync()
                    regions = automatic_regions(self.app.config["SETTINGS"].schedule.regions)
                    tenant = gs.backends["master"].tenant_id()
                    return EventFilter(gs.config.main.master_region, tenant, regions)
                except (ApiError, BackendError, ConfigError) as exc:
                    log.error("Cannot read the master project or the regions: %s", exc)
            self._stop.wait(RETRY_SETUP)
        return None

    def stop(self) -> None:
        """Clean SIGTERM: no more events, no new syncs; running syncs are cancelled (they
        delete their half uploads and end ``failed``); the schedule catches up later."""
        self._stop.set()
        with self._life:
            if self._oslo is not None:
                self._oslo.stop()
                self._oslo.wait()
            with self._wake:
                self._wake.notify()
            if self._trigger is not None:
                self._trigger.join()
        runner = self.app.extensions[RUNNER]
        runner.stop_syncs(timeout=STOP_TIMEOUT)
        runner.shutdown(wait=True)

    # -- syncs ---------------------------------------------------------------------------
    def _refresh_regions(self) -> None:
        """Regions added to (or removed from) the catalogs since the start count too."""
        with self.app.app_context():
            try:
                regions = automatic_regions(self.app.config["SETTINGS"].schedule.regions)
            except (ApiError, BackendError, ConfigError) as exc:
                log.warning("Cannot refresh the region list, keeping the previous one: %s", exc)
                return
        with self._wake:
            assert self.filter is not None
            self.filter.regions = regions

    def _trigger_loop(self) -> None:
        refresh = self.app.config["REGIONS_REFRESH"]
        refreshed = self.clock()
        while not self._stop.is_set():
            if self.clock() - refreshed >= refresh:
                refreshed = self.clock()
                self._refresh_regions()
            with self._wake:
                due_at = self.debouncer.next_due()
                timeout = 1.0 if due_at is None else max(0.0, due_at - self.clock())
                self._wake.wait(min(timeout, 1.0))
                due = self.debouncer.take_due()
            if due and not self._stop.is_set():
                self._start(due)

    def _start(self, regions: list[str]) -> None:
        """A region still syncing gets one queued task behind it (its running task may
        have read the master before the change); a region whose task cannot be stored now
        (database briefly unreachable) is due again after another quiet period."""
        busy = []
        with self.app.app_context():
            for region in regions:
                try:
                    start_automatic(region, NOTIFICATIONS)
                except Exception:  # the database may be briefly unreachable: retry later
                    log.exception("Cannot start the sync of %s", region)
                    busy.append(region)
        if busy:
            with self._wake:
                self.debouncer.add(busy)


def _name(payload: Any) -> str:
    if isinstance(payload, dict):
        return f"{payload.get('name') or ''} ({payload.get('id')})"
    return "?"


def run_listener(app: Flask) -> None:
    """Until SIGTERM or SIGINT (``manage.py listen``)."""
    for name in ("amqp", "kombu", "oslo_messaging"):  # their DEBUG is a heartbeat every 2 s
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.INFO)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    listener = Listener(app)
    starter = threading.Thread(target=listener.start, name="listen-start", daemon=True)
    starter.start()
    while not stop.wait(1.0):
        pass
    log.info("Listener stopping")
    stopper = threading.Thread(target=listener.stop, name="listen-stop", daemon=True)
    stopper.start()
    stopper.join(STOP_TIMEOUT)
    if stopper.is_alive():  # e.g. oslo.messaging stuck reconnecting to a vanished broker
        log.error("The listener did not stop within %s s; exiting anyway", STOP_TIMEOUT)
        logging.shutdown()
        os._exit(1)
