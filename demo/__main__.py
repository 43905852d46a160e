"""``python -m demo start|stop`` (``make demo`` / ``make demo-stop``).

``start`` brings up the testbed in ``.demo/testbed``, seeds the master region Spain2,
writes the service's configuration into ``.demo/``, runs ``manage.py db upgrade``, starts
the service under gunicorn in the background, syncs the target regions through the API
and prints their image statuses and the commands to call the API by hand. Running it
again restarts the service on the same port and reuses the testbed and the images.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo import automatic, service
from demo.service import MASTER, REPO, Api, ServiceFiles
from testbed.clients import session_for
from testbed.identity import password_auth

DEMO_DIR = REPO / ".demo"
TESTBED_DIR = DEMO_DIR / "testbed"
STATE_FILE = DEMO_DIR / "demo.json"
DEFAULT_PORT = 8080
REGIONS = ("Trento", "Lannion", "other:Madrid")


@dataclass(frozen=True)
class DemoImage:
    name: str
    size: int
    public: bool
    properties: dict[str, str]


IMAGES = (
    DemoImage("cirros-mini", 4096, True, {"type": "base", "os_distro": "cirros"}),
    DemoImage("ubuntu-mini", 12288, True, {"type": "base", "os_distro": "ubuntu"}),
    DemoImage("tools-app", 8192, True, {"type": "app", "nid": "42"}),
    DemoImage("private-notes", 2048, False, {"type": "scratch"}),
)


def say(text: str = "") -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- testbed


def start_testbed() -> dict[str, Any]:
    """The testbed CLI reuses a running testbed of the same workdir and prints its summary."""
    say(f"== testbed ({TESTBED_DIR.relative_to(REPO)}) ==")
    subprocess.run(
        [sys.executable, "-m", "testbed", "start", "--workdir", str(TESTBED_DIR)],
        cwd=REPO,
        check=True,
    )
    return json.loads((TESTBED_DIR / "testbed.json").read_text())


def glance_client(info: dict[str, Any], region: str) -> Any:
    from glanceclient import Client

    keystone = info["regions"][region]["keystone"]
    return Client("2", session=session_for(info, keystone), region_name=region)


def seed_images(info: dict[str, Any]) -> None:
    """Create the demo images in Spain2 unless an active one of that name is there."""
    say(f"== images in the master region {MASTER} ==")
    client = glance_client(info, MASTER)
    present: dict[str, list[dict]] = {}
    for image in client.images.list():
        present.setdefault(image["name"], []).append(image)
    for wanted in IMAGES:
        found = present.get(wanted.name, [])
        if len(found) == 1 and found[0]["status"] == "active":
            state = "kept"
        else:
            for image in found:
                client.images.delete(image["id"])
            create_image(client, wanted)
            state = "created"
        visibility = "public" if wanted.public else "private (not synchronised)"
        say(f"  {wanted.name:<14} {wanted.size:>6} bytes  {visibility:<27} {state}")


def create_image(client: Any, wanted: DemoImage) -> None:
    """Random raw bytes: Glance checks the data against ``disk_format``."""
    record = client.images.create(
        name=wanted.name,
        visibility="public" if wanted.public else "private",
        disk_format="raw",
        container_format="bare",
        **wanted.properties,
    )
    data = os.urandom(wanted.size)
    client.images.upload(record["id"], io.BytesIO(data), image_size=len(data))


# --------------------------------------------------------------------------- service


def load_state() -> dict[str, Any]:
    try:
        return json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return {}


def choose_port(state: dict[str, Any]) -> int:
    """The previous run's port, else 8080, else any free port (only when it is free)."""
    for port in (state.get("port"), DEFAULT_PORT):
        if port and service.port_free(port):
            return port
    return service.free_port()


def start_service(info: dict[str, Any], files: ServiceFiles) -> str:
    """(Re)start gunicorn with fresh configuration files; returns the base URL."""
    say("== REST service ==")
    if service.stop(files):
        say("  stopped the service of the previous run")
    port = choose_port(load_state())
    service.write_files(files, info, port, workers=2)
    automatic.add_notifications(files, info)
    say(f"  configuration: {rel(files.settings)}, {rel(files.logging)}, {rel(files.core)}")
    service.db_upgrade(files)
    say(f"  manage.py db upgrade: {rel(files.database)}")
    service.start(files, port, workers=2)
    STATE_FILE.write_text(json.dumps({"port": port}) + "\n")
    url = f"http://127.0.0.1:{port}"
    say(f"  gunicorn (2 workers) on {url}, pid {service.read_pid(files)} in {rel(files.pidfile)}")
    say(f"  logs: {rel(files.server_log)}, {rel(files.api_log)}")
    return url


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# --------------------------------------------------------------------------- sync


def sync_regions(api: Api) -> dict[str, dict[str, Any]]:
    """POST a task per region (all run at once), then wait for each to end."""
    say("== sync through the API ==")
    locations = {}
    for region in REGIONS:
        answer = api.call("POST", f"/v1/regions/{region}/tasks")
        if answer.status_code not in (200, 202):
            raise SystemExit(f"POST /v1/regions/{region}/tasks: {answer.status_code} {answer.text}")
        locations[region] = answer.headers["Location"]
        say(f"  POST /v1/regions/{region}/tasks -> {answer.status_code} {locations[region]}")
    tasks = {}
    for region, location in locations.items():
        tasks[region] = task = api.wait_task(location)
        say(f"  {region:<13} {task['status']}: {task['message']}")
    return tasks


def status_table(api: Api) -> bool:
    """One line per image and region; True when every image is ``ok``."""
    say("== image status per region (GET /v1/regions/<region>/images) ==")
    all_ok = True
    for region in REGIONS:
        answer = api.call("GET", f"/v1/regions/{region}/images")
        answer.raise_for_status()
        for image in answer.json()["images"]:
            all_ok &= image["status"] == "ok"
            note = f"  ({image['message']})" if image["message"] else ""
            say(f"  {region:<13} {image['name']:<14} {image['status']}{note}")
    return all_ok


def token_command(keystone: dict[str, Any]) -> str:
    """A curl call to Keystone v3 printing the X-Subject-Token header (the token)."""
    admin = keystone["admin"]
    fields = ("username", "password", "project_name", "user_domain_name", "project_domain_name")
    body = password_auth(*(admin[field] for field in fields))
    return (
        f"export TOKEN=$(curl -si -X POST {keystone['url']}/auth/tokens "
        f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))} "
        "| awk 'tolower($1) == \"x-subject-token:\" {print $2}' | tr -d '\\r')"
    )


def usage_lines(info: dict[str, Any], url: str, lannion_task: str) -> list[str]:
    auth = '-H "X-Auth-Token: $TOKEN"'
    return [
        "# a token of the testbed admin (valid 1 hour):",
        token_command(info["keystones"]["keystone-1"]),
        "# image statuses of Trento:",
        f"curl -s {auth} {url}/v1/regions/Trento/images",
        "# start a sync of Lannion (202 new task, 200 when one is already running):",
        f"curl -si -X POST {auth} {url}/v1/regions/Lannion/tasks",
        "# a task (use the Location header of the POST):",
        f"curl -s {auth} {url}{lannion_task}",
        "# every route: " + f"curl -s {url}/v1/openapi.json",
    ]


# --------------------------------------------------------------------------- commands


def cmd_start() -> int:
    DEMO_DIR.mkdir(exist_ok=True)
    info = start_testbed()
    seed_images(info)
    files = ServiceFiles(DEMO_DIR)
    url = start_service(info, files)
    api = Api(url, service.get_token(info["keystones"]["keystone-1"]))
    tasks = sync_regions(api)
    all_ok = status_table(api)
    say("== web page ==")
    for line in page_lines(info, url):
        say(line)
    arrived = automatic_sync(info, files, api)
    say("== call the API yourself ==")
    for line in usage_lines(info, url, lannion_location(api)):
        say(line)
    say("Stop everything with: make demo-stop")
    failed = [region for region, task in tasks.items() if task["status"] != "synced"]
    if failed or not all_ok or len(arrived) < len(REGIONS):
        say(
            f"DEMO FAILED: tasks not synced: {failed or 'none'}; all images ok: {all_ok}; "
            f"new image arrived in {sorted(arrived)}"
        )
        return 1
    return 0


def automatic_sync(info: dict[str, Any], files: ServiceFiles, api: Api) -> dict[str, float]:
    """``manage.py listen`` beside the service; one more master image arrives by itself."""
    say("== automatic sync (manage.py listen, the master's notifications) ==")
    pid = automatic.start(files)
    say(f"  listener pid {pid} in {rel(automatic.pidfile(files))}, log {rel(files.api_log)}")
    return automatic.upload_and_watch(glance_client(info, MASTER), api, REGIONS)


def lannion_location(api: Api) -> str:
    """The newest Lannion task: a real task id for the printed GET line."""
    task = api.call("GET", "/v1/regions/Lannion/tasks").json()["tasks"][0]
    return f"/v1/regions/Lannion/tasks/{task['taskId']}"


def page_lines(info: dict[str, Any], url: str) -> list[str]:
    """Where the status page is and who may sign in (the testbed's fixed accounts)."""
    keystone = info["keystones"]["keystone-1"]
    admin, demo = keystone["admin"], keystone["demo"]
    return [
        f"  status page: {url}/ui/",
        f"  sign in as {admin['username']} / {admin['password']}, project "
        f"{admin['project_name']}, domain Default (may sync and cancel)",
        f"  or as {demo['username']} / {demo['password']}, project {admin['project_name']} "
        "(a reader of the master's project: read-only)",
        f"  metrics: {url}/metrics",
    ]


def cmd_screenshot(path: str) -> int:
    """Sign in to the running demo's page in headless Chromium and save it as a PNG."""
    from demo.browser import chromium, sign_in

    port = load_state().get("port")
    info = json.loads((TESTBED_DIR / "testbed.json").read_text())
    if not port:
        raise RuntimeError("the demo is not running: make demo")
    url = f"http://127.0.0.1:{port}"
    driver = chromium(1280, 900)
    try:
        sign_in(driver, url, info["keystones"]["keystone-1"]["admin"])
        deadline = time.monotonic() + 60
        while not driver.execute_script(
            "return document.querySelectorAll('#matrix tbody tr').length"
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the page did not show the image matrix within 60 s")
            time.sleep(0.2)
        time.sleep(1)  # the task lists of the first poll
        driver.save_screenshot(path)
    finally:
        driver.quit()
    say(f"screenshot of {url}/ui/ written to {path}")
    return 0


def cmd_stop() -> int:
    files = ServiceFiles(DEMO_DIR)
    say("listener stopped" if automatic.stop(files) else "listener was not running")
    say("service stopped" if service.stop(files) else "service was not running")
    if (TESTBED_DIR / "testbed.json").is_file():
        subprocess.run(
            [sys.executable, "-m", "testbed", "stop", "--workdir", str(TESTBED_DIR)],
            cwd=REPO,
            check=True,
        )
    else:
        say("no testbed in .demo/testbed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "screenshot"])
    parser.add_argument("path", nargs="?", default="docs/ui.png", help="screenshot file")
    args = parser.parse_args(argv)
    try:
        if args.command == "screenshot":
            return cmd_screenshot(args.path)
        return cmd_start() if args.command == "start" else cmd_stop()
    except (subprocess.CalledProcessError, RuntimeError, TimeoutError) as exc:
        # The failing step already printed its output (testbed) or carries it (service).
        say(f"DEMO FAILED: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
