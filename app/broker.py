"""Sync tasks on Celery workers, when ``[celery] BROKER_URL`` is set (issue 15).

The web processes (and the schedule and the listener, which all go through
``start_sync``) store the task ``queued`` and publish one message ``(task id, region)``
on the queue of the region (``[celery] ROUTES``). ``manage.py worker`` runs Celery's own
worker; the message's handler claims the task with the same conditional update as the
thread runner (``queued`` -> ``syncing``, the lease) and hands the sync to the worker's
``TaskRunner`` pool (``-c N`` syncs at a time), which heartbeats, stores progress, polls
cancels and sweeps dead tasks as in a service process.

The database lease is the only authority; a message is only a hint that a task may be
waiting. Delivery rules, chosen on purpose:

* The handler never runs a sync itself: it takes milliseconds, so no message stays
  unacked for long. A sync lasts hours, and a delivery unacked that long is taken back
  by the broker (RabbitMQ's ``consumer_timeout``, 30 min by default, closes the
  channel; Redis's ``visibility_timeout`` redelivers) and would reach another worker.
  With the sync inside the task, early ack would instead let each busy worker reserve
  one more message for hours, away from idle workers.
* Late ack (``task_acks_late``) with ``worker_prefetch_multiplier = 1`` on Celery's solo
  pool: a worker holds one message at a time, acked only once its task is claimed in
  the database, dropped or republished; a worker killed in between gets the message
  redelivered, and the lease makes the second delivery harmless.
* A message whose task is no longer ``queued`` (claimed by another delivery, ended,
  cancelled, withdrawn) is dropped: a redelivered or duplicated message syncs nothing.
* A task still ``queued`` whose region is busy (a follow-up behind a running sync), or
  a worker whose pool is full or that is stopping, republishes the message (Celery's
  ``retry``) after ``RETRY_SECONDS``, without limit: any worker with room may take it,
  and the queued task's own ``QUEUE_TIMEOUT`` ends the loop.
* A queued task of a free region whose message was lost (a crash between the commit
  and the publish, a purged queue, a failed republish) gets a new one from the lease
  loop of a web process once no worker claimed it or put it back for ``DEAD_AFTER``
  (``LeaseLoop.republish_unheard``); the duplicate a slow message may then meet is
  dropped like any other.
* A worker killed mid-sync leaves a ``syncing`` task whose heartbeat stops; the lease
  sweep of any process fails it within ``DEAD_AFTER`` + one interval (at once on the
  same host, where its pid is seen dead).
* A fan-out group (``POST /v1/tasks``) is one message per queue holding that queue's
  members: the worker that takes it claims every member still queued and syncs them in
  one ``sync_regions`` call (one master read per shared image); a member whose region
  is busy goes back to the queue as a message of its own.
* SIGTERM of a worker ends its syncs as the service's SIGTERM does
  (``TaskRunner.stop_syncs``): each is cancelled, deletes its half image and ends
  ``failed``, within ``[gunicorn] GRACEFUL_TIMEOUT``.
"""

from __future__ import annotations

import logging
import os
from functools import partial

from celery import Celery
from celery.signals import worker_shutting_down
from flask import Flask

from app.errors import ApiError
from app.logs import log_context
from app.placement import Routes, unknown_names
from app.regions import Core
from app.settings import CelerySettings, SettingsError

log = logging.getLogger("GlanceSync-API")
EXTENSION = "glancesync.celery"
TASK_NAME = "glancesync.sync_task"
GROUP_TASK_NAME = "glancesync.sync_group"
RETRY_SECONDS = 2.0  # republish delay of a message whose region is busy
NO_BROKER = "ERROR: manage.py worker needs [celery] BROKER_URL (or GLANCESYNCAPP_BROKER_URL)"


def make_celery(settings: CelerySettings) -> Celery:
    celery = Celery("glancesync", broker=settings.broker_url, set_as_current=False)
    celery.conf.update(
        task_default_queue=settings.routes.default,
        task_acks_late=True,  # see the module docstring
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # the task row is the result
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,  # fiware-glancesync-logging.cfg stays in charge
        worker_send_task_events=False,
    )
    return celery


def init_broker(app: Flask) -> Celery | None:
    """With a broker: publish instead of claiming in this process, and register the
    handler that workers run. None without a broker (syncs run in threads)."""
    from app.tasks import runner_of

    settings: CelerySettings = app.config["SETTINGS"].celery
    if not settings.broker_url:
        return None
    celery = make_celery(settings)

    @celery.task(name=TASK_NAME, bind=True, max_retries=None, ignore_result=True)
    def sync_task(task, task_id: str, region: str) -> str:
        with log_context(task_id, region):  # the worker's log lines name the task
            return handle_message(app, task, task_id, region)

    @celery.task(name=GROUP_TASK_NAME, bind=True, max_retries=None, ignore_result=True)
    def sync_group(task, members: list[list[str]]) -> str:
        return handle_group(app, task, [(task_id, region) for task_id, region in members])

    app.extensions[EXTENSION] = celery
    # a queued task of a free region that no worker claimed nor put back (every
    # RETRY_SECONDS) within one lease (DEAD_AFTER) gets a new message: its own is lost
    lease = runner_of(app).dead_after.total_seconds()
    runner_of(app).republish_after = max(lease, 2 * RETRY_SECONDS)
    runner_of(app).dispatch = partial(publish, celery, settings.routes)
    runner_of(app).dispatch_group = partial(publish_group, celery, settings.routes)
    return celery


def publish(celery: Celery, routes: Routes, task_id: str, region: str) -> None:
    """One message on the region's queue; a broker that cannot be reached is a 503."""
    queue = routes.queue_for(region)
    try:
        celery.send_task(
            TASK_NAME,
            args=[task_id, region],
            queue=queue,
            retry=True,
            retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
        )
    except Exception as exc:  # kombu's OperationalError and socket errors alike
        log.error("Cannot publish task %s of region %s: %s", task_id, region, exc)
        raise ApiError(503, "The task broker cannot be reached") from None
    log.info("Task %s of region %s published on queue %s", task_id, region, queue)


def publish_group(celery: Celery, routes: Routes, members: list[tuple[str, str]]) -> None:
    """A fan-out group (``POST /v1/tasks``): one message per queue holding that queue's
    members, so one worker near those regions runs them together, one master read each."""
    by_queue: dict[str, list[tuple[str, str]]] = {}
    for task_id, region in members:
        by_queue.setdefault(routes.queue_for(region), []).append((task_id, region))
    for queue, part in by_queue.items():
        if len(part) == 1:
            publish(celery, routes, *part[0])
            continue
        try:
            celery.send_task(GROUP_TASK_NAME, args=[part], queue=queue, retry=True)
        except Exception as exc:  # kombu's OperationalError and socket errors alike
            log.error("Cannot publish the group %s: %s", part, exc)
            raise ApiError(503, "The task broker cannot be reached") from None
        log.info("Group %s published on queue %s", [region for _, region in part], queue)


def handle_group(app: Flask, task, members: list[tuple[str, str]]) -> str:
    """Claim what is still queued of a group and run it as one fan-out group here; a
    member whose region is busy goes back to the queue as a message of its own, one no
    longer queued is dropped (as ``handle_message`` does)."""
    from app import leases
    from app.models import QUEUED
    from app.tasks import runner_of
    from app.tasks.groups import run_group

    runner = runner_of(app)
    if runner.stopping or len(runner.owned()) >= runner.max_workers:
        raise task.retry(countdown=RETRY_SECONDS)
    try:
        with app.app_context():
            for task_id, region in members:
                if runner.try_claim(task_id, region, launch=False):
                    continue
                current = leases.task_by_id(task_id)
                if current is not None and current.status == QUEUED:
                    runner.dispatch(task_id, region)  # busy region: waits alone on the queue
    finally:  # what was claimed runs, even when a later member raised (else it stayed
        claimed = runner.take_claims()  # syncing, renewed by the lease loop, forever)
        if claimed:
            log.info("Group %s claimed by %s", [r for _, r in claimed], runner.worker.name)
            runner.submit(run_group, runner, claimed)
    return f"claimed {len(claimed)} of {len(members)}"


def handle_message(app: Flask, task, task_id: str, region: str) -> str:
    """Claim the task and start its sync, or drop the message, or republish it."""
    from app import leases
    from app.models import QUEUED
    from app.tasks import runner_of

    runner = runner_of(app)
    if runner.stopping or len(runner.owned()) >= runner.max_workers:
        seen(app, task_id)
        raise task.retry(countdown=RETRY_SECONDS)
    with app.app_context():
        if runner.try_claim(task_id, region):
            log.info("Task %s of region %s claimed by %s", task_id, region, runner.worker.name)
            return "claimed"
        current = leases.task_by_id(task_id)
        status = None if current is None else current.status
    if status == QUEUED:
        seen(app, task_id)
    if status != QUEUED:
        log.info("Message of task %s dropped: the task is %s", task_id, status or "gone")
        return "dropped"
    raise task.retry(countdown=RETRY_SECONDS)


def seen(app: Flask, task_id: str) -> None:
    """Mark a queued task's message alive before it goes back to the queue, so the lease
    loops do not republish it (``LeaseLoop.republish_unheard``); a failure only costs a
    duplicate message, never this one."""
    from app import leases

    try:
        with app.app_context():
            leases.seen_queued(task_id)
    except Exception:
        log.exception("Task %s: could not mark its message seen", task_id)


def check_routes(routes: Routes, core: Core) -> None:
    """Every routed target and region must exist: a typo would silently send the region
    to the default queue. Raises SettingsError (a start-up error)."""
    if not routes.regions and not routes.targets:
        return
    try:
        unknown = unknown_names(routes, core.glancesync().backends, core.target_regions)
    except ApiError as exc:
        raise SettingsError(f"ERROR: Cannot check [celery] ROUTES: {exc.description}") from None
    if unknown:
        raise SettingsError("ERROR: [celery] ROUTES names unknown " + ", ".join(unknown))


def check_app_routes(app: Flask) -> None:
    """``check_routes`` for a built app that publishes (runserver); nothing without a broker."""
    from app.regions import core

    if EXTENSION in app.extensions:
        with app.app_context():
            check_routes(app.config["SETTINGS"].celery.routes, core())


def run_worker(app: Flask, queues: tuple[str, ...], concurrency: int | None) -> None:
    """Celery's own worker on the solo pool (its handler is short), the syncs in a
    ``TaskRunner`` of ``concurrency`` threads with the lease loop of a service process."""
    from app.tasks import check_lease_timing, init_tasks, runner_of, start_service

    celery = app.extensions.get(EXTENSION)
    if celery is None:
        raise SettingsError(NO_BROKER)
    check_lease_timing(app.config)
    settings = app.config["SETTINGS"]
    check_app_routes(app)
    if concurrency:
        app.config["SYNC_WORKERS"] = concurrency
        replaced = runner_of(app)
        fresh = init_tasks(app)  # nothing runs yet on the runner replaced
        fresh.dispatch, fresh.dispatch_group = replaced.dispatch, replaced.dispatch_group
    if not start_service(app):
        raise SettingsError("ERROR: The worker cannot start: see the log above")
    runner = runner_of(app)
    if settings.celery.metrics_port:
        from app.metrics import serve_worker_metrics

        serve_worker_metrics(app, settings.host, settings.celery.metrics_port)
    worker_shutting_down.connect(lambda **_: runner.stop_syncs(timeout=0), weak=False)
    argv = [
        "worker",
        "--pool=solo",
        f"--queues={','.join(queues or (settings.celery.routes.default,))}",
        f"--hostname=glancesync-{os.getpid()}@%h",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    try:
        celery.worker_main(argv)
    finally:
        if not runner.stop_syncs(timeout=settings.graceful_timeout):
            log.error(
                "Syncs still running after %d s; left to the lease sweep", settings.graceful_timeout
            )
        runner.shutdown(wait=False)
