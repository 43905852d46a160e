"""Prometheus metrics of the service (issue 16, item 2) and the ``GET /metrics`` route.

``prometheus_client`` is imported on first use only: it decides at import time whether it
runs in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), and ``manage.py gunicornserver``
sets that variable after ``app`` is imported, before the workers build their apps
(app/gunicorn.py). In that mode every worker writes its samples to files of that folder
and a scrape, answered by any worker, sums them up: the numbers are right whichever worker
ran the sync. Without the variable (``runserver``, tests) one process keeps them in memory.

Samples are recorded when something ends (a sync, a status read, a failed call), never
computed by a scrape, except the tasks by state, which are counted in the database so that
they hold across workers and hosts.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy import func, select

from app.errors import error_response
from app.models import FAILED, SYNCED, SYNCING, Task, db
from glancesync.errors import BackendError, ErrorKind

if TYPE_CHECKING:
    from app.auth import KeystoneUnavailable

log = logging.getLogger("GlanceSync-API")
MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"
STATUSES = (
    "ok",
    "ok_stalled_checksum",
    "error_checksum",
    "error_ami",
    "pending_metadata",
    "pending_upload",
    "pending_replace",
    "pending_rename",
    "pending_ami",
)
ENDED_KEPT = 1000
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, float("inf"))

bp = Blueprint("metrics", __name__)


class Metrics:
    """The metric objects of this process (one set per process, shared by its apps)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROC_VAR))
        # Multiprocess mode: nothing is registered; a scrape reads every worker's files.
        self.registry = None if self.multiprocess else CollectorRegistry()
        reg = {"registry": self.registry}
        self.sync_duration = Histogram(
            "glancesync_sync_duration_seconds",
            "Duration of the region syncs run by the service, by final task status",
            ["region", "status"],
            buckets=DURATION_BUCKETS,
            **reg,
        )
        self.tasks_ended = Counter(
            "glancesync_tasks_ended",
            "Sync tasks ended, by final status",
            ["region", "status"],
            **reg,
        )
        self.transferred = Counter(
            "glancesync_transferred_bytes",
            "Image bytes uploaded to a region by the service's syncs",
            ["region", "target"],
            **reg,
        )
        self.images = Gauge(
            "glancesync_images",
            "Images of a region per status, as of the last status read or sync",
            ["region", "status"],
            multiprocess_mode="mostrecent",
            **reg,
        )
        self.keystone_errors = Counter(
            "glancesync_keystone_errors", "Failed Keystone calls, by kind", ["kind"], **reg
        )
        self.glance_errors = Counter(
            "glancesync_glance_errors",
            "Failed Glance calls, by region and kind",
            ["region", "kind"],
            **reg,
        )
        self.counted: dict[str, dict[str, int]] = {}  # task id -> region -> bytes counted
        # Tasks that ended: a late progress report of theirs must not count again.
        self.ended: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()


_metrics: Metrics | None = None
_metrics_lock = threading.Lock()


def metrics() -> Metrics:
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            _metrics = Metrics()
        return _metrics


def target_of(region: str) -> str:
    return region.split(":", 1)[0] if ":" in region else "master"


# -- recording ----------------------------------------------------------------------------
def record_statuses(region: str, statuses: list[str]) -> None:
    """A status read of the whole region ended: the gauge of every status is set."""
    tally = Tally(statuses)
    m = metrics()
    for status in STATUSES:
        m.images.labels(region, status).set(tally.get(status, 0))


def record_progress(task_id: str, progress: dict[str, Any]) -> None:
    """Count the bytes uploaded since the last call for this task (per region)."""
    done: Tally[str] = Tally()
    for upload in progress.get("images", []):
        done[upload["region"]] += upload["bytesDone"]
    m = metrics()
    with m.lock:
        if task_id in m.ended:
            return
        counted = m.counted.setdefault(task_id, {})
        for region, nbytes in done.items():
            delta = nbytes - counted.get(region, 0)
            if delta > 0:
                m.transferred.labels(region, target_of(region)).inc(delta)
                counted[region] = nbytes


def record_sync_end(
    task_id: str,
    region: str,
    status: str,
    seconds: float,
    progress: dict,
    kinds: Collection[ErrorKind],
) -> None:
    """A task ended: its last bytes, duration, final status and the errors it met, one
    per kind in ``kinds`` (``RegionResult.error_kinds``). A failed task that recorded no
    kind (it failed outside its sync: the core would not load, an unexpected error)
    counts one ``other``."""
    record_progress(task_id, progress)
    m = metrics()
    with m.lock:
        m.counted.pop(task_id, None)
        m.ended[task_id] = None
        while len(m.ended) > ENDED_KEPT:
            m.ended.popitem(last=False)
    m.sync_duration.labels(region, status).observe(seconds)
    m.tasks_ended.labels(region, status).inc()
    if status == FAILED and not kinds:
        kinds = [ErrorKind.OTHER]
    for kind in kinds:
        record_error_kind(region, ErrorKind(kind))


def sync_ended(
    task_id: str,
    region: str,
    status: str,
    seconds: float,
    progress: dict,
    kinds: Collection[ErrorKind],
) -> None:
    """The task runner's hook, after the task's final write; never raises: a metrics
    failure must not disturb the tasks."""
    try:
        record_sync_end(task_id, region, status, seconds, progress, kinds)
        refresh_statuses(region)
    except Exception:
        log.exception("Metrics of task %s not recorded", task_id)


def refresh_statuses(region: str) -> None:
    """After a sync: read the region's statuses again for the images gauge."""
    from app.regions import core

    try:
        statuses = core().glancesync().region_statuses(region).images
    except BackendError as exc:
        record_backend_error(region, exc)
        return
    record_statuses(region, [s.status for s in statuses])


# Kinds counted as Keystone's errors; every other kind is a region's Glance.
KEYSTONE_KINDS = frozenset({ErrorKind.AUTH, ErrorKind.REGION_LIST})


def record_backend_error(region: str, error: BackendError) -> None:
    """A failed call of the core, counted under the kind its raise site gave it."""
    record_error_kind(region, error.kind)


def record_error_kind(region: str, kind: ErrorKind) -> None:
    if kind is ErrorKind.CANCELLED:
        return  # the operator's wish, not a failure
    if kind in KEYSTONE_KINDS:
        record_keystone_error(kind.value)
    else:
        metrics().glance_errors.labels(region, kind.value).inc()


def record_keystone_error(kind: str) -> None:
    metrics().keystone_errors.labels(kind).inc()


def record_keystone_unavailable(error: KeystoneUnavailable) -> None:
    """A KeystoneUnavailable of the service's own calls (token validation, sign-in)."""
    record_keystone_error(error.kind)


# -- the route ----------------------------------------------------------------------------
class TasksByState:
    """Collector of the tasks of the database by state, read at scrape time: every worker
    and host agrees on it, which per-process counters could not."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "glancesync_tasks", "Sync tasks in the database, by state", labels=["state"]
        )
        for state in sorted({SYNCING, SYNCED, FAILED, *self.counts}):
            family.add_metric([state], self.counts.get(state, 0))
        yield family


def authorised() -> bool:
    """``[metrics] TOKEN`` set: ``Authorization: Bearer <TOKEN>`` needed; unset: open."""
    expected = current_app.config["SETTINGS"].metrics_token
    if not expected:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )


@bp.get("/metrics")
def scrape() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    if not authorised():
        response = error_response(401, "The request you have made requires authentication.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="glancesync metrics"'
        return response
    m = metrics()
    registry = m.registry
    if m.multiprocess:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    counts = select(Task.status, func.count()).group_by(Task.status)
    own = CollectorRegistry()
    own.register(TasksByState(dict(db.session.execute(counts).all())))
    body = generate_latest(registry) + generate_latest(own)
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def serve_worker_metrics(app, host: str, port: int):
    """A Celery worker's own ``/metrics`` on ``[celery] METRICS_PORT``: Prometheus scrapes
    each worker host directly (its bytes and durations live in that process). The same
    route and ``[metrics] TOKEN`` rule as the service's; nothing else of the app is served.
    Returns the running server (``server_port``, ``shutdown()``)."""
    from werkzeug.serving import make_server

    def only_metrics(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not Found\n"]
        return app(environ, start_response)

    server = make_server(host, port, only_metrics, threaded=True)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    log.info("Worker metrics on http://%s:%d/metrics", host, server.server_port)
    return server


def init_metrics(app) -> None:
    """Only the route: the metric objects are made on first use, in the process that
    records (``manage.py gunicornserver`` builds an app in the arbiter, before it sets
    PROMETHEUS_MULTIPROC_DIR for the workers)."""
    app.register_blueprint(bp)
