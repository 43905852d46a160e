"""manage.py run as operators run it: a subprocess in another working directory, with
none of the service's variables of the test process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.waiting import wait_until

SERVER_VARS = (
    "GLANCESYNC_SETTINGS_FILE",
    "GLANCESYNC_LOGGING_SETTINGS_FILE",
    "GLANCESYNCAPP_DATABASE_URL",
    "GLANCESYNCAPP_DATABASE_PATH",
    "GLANCESYNCAPP_CONFIG",
)


def manage(
    repo_root: Path, cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in SERVER_VARS}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, str(repo_root / "manage.py"), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for_server(
    port: int, process: subprocess.Popen, timeout: float = 30, host: str = "127.0.0.1"
) -> dict:
    """The JSON of ``GET /`` once the server started by ``process`` answers on ``port``.

    A server that exits fails the wait at once, with the end of what it printed."""

    def info() -> dict:
        if process.poll() is not None:
            output = b"".join(part or b"" for part in process.communicate())
            raise AssertionError(f"server exited: {output.decode(errors='replace')[-3000:]}")
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=2) as response:
            return json.load(response)

    return wait_until(info, timeout, step=0.2, what=f"a server on {host}:{port}", ignore=(OSError,))
