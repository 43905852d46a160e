"""Running the service inside Gunicorn, programmatically (``manage.py gunicornserver``)."""

from __future__ import annotations

import os
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
        from app.tasks import start_service

        app = create_app()
        start_service(app)
        return app


def run_gunicorn(host: str, port: int, workers: int, pidfile: str, loglevel: str) -> None:
    """Serve until stopped; the pid file's folders are created (relative to the cwd)."""
    folder = os.path.dirname(pidfile)
    if folder:
        os.makedirs(folder, exist_ok=True)
    GlanceSyncServer(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "pidfile": pidfile,
            "loglevel": loglevel,
            # Gunicorn >= 25.1 opens one control socket per user (~/.gunicorn/gunicorn.ctl):
            # a second server on the host (demo, tests) would take it over from the first.
            "control_socket_disable": True,
        }
    ).run()
