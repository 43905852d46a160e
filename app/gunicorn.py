"""Running the service inside Gunicorn, programmatically (``manage.py gunicornserver``)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from app.settings import Settings

TASKS_EXTENSION = "glancesync.tasks"  # app.tasks.EXTENSION, without importing the app here


class GlanceSyncServer(BaseApplication):
    """Gunicorn with our options and the app factory: each worker builds its own app,
    so its task runner, heartbeat thread and Keystone session belong to that process."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # older gunicorns lack some settings
                self.cfg.set(key, value)

    def load(self):
        from app import create_app
        from app.schedule import start_scheduler
        from app.tasks import check_lease_timing, start_service

        app = create_app()
        check_lease_timing(app.config)  # checked by the arbiter first (manage.py)
        start_service(app)
        start_scheduler(app)  # every worker; the lease in the database picks one to fire
        return app


MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"


def metrics_folder() -> tuple[str, bool]:
    """The folder of the workers' metric files, emptied: the operator's
    ``PROMETHEUS_MULTIPROC_DIR``, else a new temporary one (True: ours, removed at exit).
    Set before any worker imports prometheus_client, which reads it at import time."""
    given = os.environ.get(MULTIPROC_VAR, "")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):  # counters of an earlier run
            stale.unlink()
        return given, False
    folder = tempfile.mkdtemp(prefix="glancesync-metrics-")
    os.environ[MULTIPROC_VAR] = folder
    return folder, True


def worker_exited(server: Any, worker: Any) -> None:
    """Gunicorn hook: the live gauges of a dead worker are dropped."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker) -> None:
    """Chain the worker's SIGTERM handler: first cancel the running syncs (in a thread,
    the handler must return at once), then gunicorn's graceful exit. The process exits
    once the sync threads wrote their tasks ``failed``, within GRACEFUL_TIMEOUT."""
    runner = worker.wsgi.extensions[TASKS_EXTENSION]
    graceful = max(1.0, worker.cfg.graceful_timeout - 1.0)
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame) -> None:
        threading.Thread(
            target=runner.stop_syncs, kwargs={"timeout": graceful}, name="stop-syncs"
        ).start()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def bind_address(host: str, port: int) -> str:
    """``host:port``; an IPv6 address goes in brackets (``[::]:8080``)."""
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run_gunicorn(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve until stopped; the pid file's folders are created (relative to the cwd).

    gthread workers: requests run in ``THREADS`` threads while the worker's main loop
    keeps telling the arbiter it is alive, so a long GET or a long sync never reaches
    ``TIMEOUT``; the app is built in each worker after the fork (no ``preload_app``)."""
    folder = os.path.dirname(settings.pidfile)
    if folder:
        os.makedirs(folder, exist_ok=True)
    metrics_dir, temporary = metrics_folder()
    try:
        serve(settings, host, port, workers)
    finally:
        if temporary:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    GlanceSyncServer(
        {
            "bind": bind_address(host, port),
            "workers": workers,
            "worker_class": "gthread",
            "threads": settings.threads,
            "timeout": settings.timeout,
            "graceful_timeout": settings.graceful_timeout,
            "post_worker_init": post_worker_init,
            "pidfile": settings.pidfile,
            "loglevel": settings.loglevel,
            # Gunicorn >= 25.1 opens one control socket per user (~/.gunicorn/gunicorn.ctl):
            # a second server on the host (demo, tests) would take it over from the first.
            "control_socket_disable": True,
            "child_exit": worker_exited,
        }
    ).run()
