"""Running the service inside Gunicorn, programmatically (``manage.py gunicornserver``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication


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

        app = create_app()
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


def run_gunicorn(host: str, port: int, workers: int, pidfile: str, loglevel: str) -> None:
    """Serve until stopped; the pid file's folders are created (relative to the cwd)."""
    folder = os.path.dirname(pidfile)
    if folder:
        os.makedirs(folder, exist_ok=True)
    metrics_dir, temporary = metrics_folder()
    try:
        serve(host, port, workers, pidfile, loglevel)
    finally:
        if temporary:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def serve(host: str, port: int, workers: int, pidfile: str, loglevel: str) -> None:
    GlanceSyncServer(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "pidfile": pidfile,
            "loglevel": loglevel,
            # Gunicorn >= 25.1 opens one control socket per user (~/.gunicorn/gunicorn.ctl):
            # a second server on the host (demo, tests) would take it over from the first.
            "control_socket_disable": True,
            "child_exit": worker_exited,
        }
    ).run()
