"""Running the service inside Gunicorn, programmatically (``manage.py gunicornserver``)."""

from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication

from app.settings import Settings


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
        from app.tasks import start_service

        app = create_app()
        start_service(app)
        return app


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
    GlanceSyncServer(
        {
            "bind": bind_address(host, port),
            "workers": workers,
            "worker_class": "gthread",
            "threads": settings.threads,
            "timeout": settings.timeout,
            "graceful_timeout": settings.graceful_timeout,
            "pidfile": settings.pidfile,
            "loglevel": settings.loglevel,
            # Gunicorn >= 25.1 opens one control socket per user (~/.gunicorn/gunicorn.ctl):
            # a second server on the host (demo, tests) would take it over from the first.
            "control_socket_disable": True,
        }
    ).run()
