"""The demo's automatic sync (issue 17): ``manage.py listen`` beside the service, then one
more image uploaded to the master, seen arriving in every region with nobody calling.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from demo import service
from demo.service import MASTER, Api, ServiceFiles

ARRIVAL_TIMEOUT = 120.0


def pidfile(files: ServiceFiles) -> Path:
    return files.workdir / "listen.pid"


def log(files: ServiceFiles) -> Path:
    return files.workdir / "listen.log"


def add_notifications(files: ServiceFiles, info: dict[str, Any]) -> None:
    """[notifications] of the testbed's vhost, [schedule] REGIONS of the demo."""
    url = info["notifications"]["transport_url"]
    with open(files.settings, "a", encoding="utf-8") as stream:
        stream.write(
            f"\n[notifications]\nTRANSPORT_URL = {url}\n\n[schedule]\nREGIONS = master: other:\n"
        )


def stop(files: ServiceFiles, timeout: float = 30.0) -> bool:
    """SIGTERM the listener of the pid file; False when none ran."""
    try:
        pid = int(pidfile(files).read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.2)
    pidfile(files).unlink(missing_ok=True)
    return True


def start(files: ServiceFiles) -> int:
    """``manage.py listen`` in the background; waits until it consumes the notifications."""
    stop(files)
    api_log = files.api_log
    seen = api_log.read_text(errors="replace").count("Listening to the master")
    with open(log(files), "ab") as out:
        proc = subprocess.Popen(
            service.manage("listen"),
            cwd=files.workdir,
            env=service.service_environ(files),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pidfile(files).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 60
    while api_log.read_text(errors="replace").count("Listening to the master") <= seen:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"manage.py listen did not start; see {log(files)}")
        time.sleep(0.2)
    return proc.pid


def upload_and_watch(client: Any, api: Api, regions: tuple[str, ...]) -> dict[str, float]:
    """A new public image in the master; seconds until each region's image status is ok."""
    name = f"news-{time.strftime('%H%M%S')}"
    record = client.images.create(
        name=name, visibility="public", disk_format="raw", container_format="bare"
    )
    data = os.urandom(16384)
    client.images.upload(record["id"], io.BytesIO(data), image_size=len(data))
    print(f"  uploaded {name} to {MASTER}; nobody calls the API now", flush=True)
    start = time.monotonic()
    arrived: dict[str, float] = {}
    while len(arrived) < len(regions) and time.monotonic() - start < ARRIVAL_TIMEOUT:
        for region in regions:
            if region in arrived:
                continue
            answer = api.call("GET", f"/v1/regions/{region}/images?image={name}")
            if [image["status"] for image in answer.json()["images"]] == ["ok"]:
                arrived[region] = time.monotonic() - start
                task = api.call("GET", f"/v1/regions/{region}/tasks").json()["tasks"][0]
                print(
                    f"  {region:<13} {name} ok after {arrived[region]:.1f} s "
                    f"(task {task['taskId'][:8]}, user {task['user']})",
                    flush=True,
                )
        time.sleep(0.3)
    return arrived
