"""Task leases with real server processes on PostgreSQL (issue 12 item 6).

Each test runs ``manage.py gunicornserver`` instances on one PostgreSQL database against
the testbed's Keystone and Glance. A sync is held mid-upload by freezing the target
Glance (SIGSTOP), which makes the timing deterministic. Intervals are shortened through
the Flask config file (HEARTBEAT_INTERVAL 0.5 s, DEAD_AFTER 5 s) and ``[gunicorn]``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_process import SlowFeed
from fixtures_glance import region_images, unique
from service_process import REPO, ServiceProcess

from glancesync.backends.glance import UPLOAD_MARKER
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.concurrency,
    pytest.mark.usefixtures("clean_glance"),
]

MB = 1024 * 1024
FAST = {"HEARTBEAT_INTERVAL": 0.5, "DEAD_AFTER": 5.0}  # margin for a loaded CI machine
INTERRUPTED = "Sync interrupted: the server process running it stopped"
STOPPED = "Sync interrupted: the service stopped"
# what a runner logs when it ends a sync whose lease it lost (it leaves the row alone)
ENDED_LOST = re.compile(r"lease lost, its row is left|lease lost before its final write")
OWN_PID_NAMESPACE = ["unshare", "--pid", "--fork", "--mount-proc"]
# Run manage.py with the code's own clock 10 minutes late (fault injection stays here).
SKEWED = (
    f"import runpy, sys, datetime; sys.path.insert(0, {str(REPO)!r}); import app.models as m; "
    "real = m.utcnow; m.utcnow = lambda: real() - datetime.timedelta(minutes=10); "
    "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def service(tb_info, images_dir, folder: Path, **options) -> ServiceProcess:
    options.setdefault("flask", FAST)
    # Each instance has its own lock_dir, as two containers or hosts would: between
    # instances the database lease alone decides (a frozen instance still holds its flock).
    options.setdefault("core_main", f"lock_dir = {folder / 'locks'}\n")
    return ServiceProcess(tb_info, folder, images_dir, **options)


def appears(glance, region: str, name: str) -> None:
    """The copy's record exists in the region: the upload of its data has begun."""
    wait_until(lambda: name in region_images(glance(region)), 30)


def row(svc: ServiceProcess, location: str) -> dict:
    return svc.get_task_row(location)


def one_verified_copy(glance, region: str, name: str, md5: str) -> None:
    images = [dict(i) for i in glance(region).images.list() if i["name"] == name]
    assert len(images) == 1, images
    assert images[0]["status"] == "active" and images[0]["checksum"] == md5
    assert UPLOAD_MARKER not in images[0]


def test_sigterm_mid_sync_fails_the_task_cleanly(
    tb_info, images_dir, tmp_path, admin_token, add_image, glance, frozen
):
    name = unique("term")
    data = os.urandom(16 * MB)
    made = add_image(name, data=data)
    # the master's data comes through a FIFO at about 5 MB/s: the upload is surely still
    # running when the SIGTERM arrives (a free 16 MB upload on loopback may end first)
    feed = SlowFeed(Path(images_dir) / made.id, data)
    token = admin_token()
    svc = service(tb_info, images_dir, tmp_path / "svc", gunicorn={"GRACEFUL_TIMEOUT": 10})
    with svc.running(), contextlib.closing(feed):
        location = svc.post("/v1/regions/Trento/tasks", token).headers["Location"]
        appears(glance, "Trento", name)
        feed.wait_for(2 * MB)
        with frozen("glance-Trento"):
            started = time.monotonic()
            os.killpg(svc.process.pid, signal.SIGTERM)
            time.sleep(1)  # the fault: Glance stays frozen a while after the SIGTERM
        svc.process.wait(15)
        took = time.monotonic() - started
        task = row(svc, location)
        assert (task["status"], task["message"]) == ("failed", STOPPED)
        assert took < 10, f"the service took {took:.1f} s to stop"
        assert name not in region_images(glance("Trento"))  # no half image left
    print(f"SIGTERM mid-sync: stopped and task failed in {took:.1f} s")


def test_a_get_longer_than_the_worker_timeout_kills_nothing(
    tb_info, images_dir, tmp_path, admin_token, add_image, glance, frozen, testbed
):
    """TIMEOUT 3 s, one worker; a GET held 6 s by a frozen Glance while a sync runs."""
    name = unique("slowget")
    master = add_image(name, size=16 * MB)
    token = admin_token()
    svc = service(tb_info, images_dir, tmp_path / "svc", workers=1, gunicorn={"TIMEOUT": 3})
    with svc.running():
        pids = svc.worker_pids()
        location = svc.post("/v1/regions/Trento/tasks", token).headers["Location"]
        appears(glance, "Trento", name)
        with frozen("glance-Trento"):
            testbed.freeze_server("glance-Lannion")
            threading.Timer(6, testbed.thaw_server, ["glance-Lannion"]).start()
            started = time.monotonic()
            response = svc.get("/v1/regions/Lannion/images", token)
            took = time.monotonic() - started
        assert took >= 5.5 and response.status_code == 200, (took, response.text)
        assert svc.worker_pids() == pids  # the arbiter killed no worker
        final = svc.wait_task(location, token, timeout=60)
        assert final["status"] == "synced", final
        one_verified_copy(glance, "Trento", name, master.md5)
    print(f"GET held {took:.1f} s with TIMEOUT 3 s: worker and sync alive")


def test_same_host_name_in_own_pid_namespaces_spares_live_tasks(
    tb_info, images_dir, tmp_path, admin_token, add_image, glance, frozen
):
    """Two instances, same host name, each in its own pid namespace (equal pids), one
    with its clock 10 minutes late: each restarts and sweeps while the other syncs."""
    name = unique("twins")
    master = add_image(name, size=8 * MB)
    token = admin_token()
    first = service(tb_info, images_dir, tmp_path / "a", prefix=OWN_PID_NAMESPACE)
    second = service(
        tb_info,
        images_dir,
        tmp_path / "b",
        database=first.database,
        prefix=[*OWN_PID_NAMESPACE, sys.executable, "-c", SKEWED],
    )
    with first.running():
        second.start()
        try:
            for runner, other, region in ((second, first, "Trento"), (first, second, "Lannion")):
                location = runner.post(f"/v1/regions/{region}/tasks", token).headers["Location"]
                appears(glance, region, name)
                with frozen(f"glance-{region}"):
                    other.stop()
                    other.start()  # sweeps at start, then in its lease loop
                    # time that must pass (the scenario): the task outlives DEAD_AFTER
                    # while the restarted instance sweeps
                    time.sleep(FAST["DEAD_AFTER"] + 2 * FAST["HEARTBEAT_INTERVAL"])
                    assert row(runner, location)["status"] == "syncing"
                final = runner.wait_task(location, token, timeout=60)
                assert final["status"] == "synced", final
                one_verified_copy(glance, region, name, master.md5)
        finally:
            second.stop()


def test_a_frozen_instance_loses_its_task_and_never_writes_it(
    tb_info, images_dir, tmp_path, admin_token, add_image, glance, frozen
):
    """SIGSTOP of a whole instance past DEAD_AFTER: the other takes the region over; after
    SIGCONT the frozen one stops its sync, deletes its half image and leaves the row."""
    name = unique("frozen")
    master = add_image(name, size=16 * MB)
    token = admin_token()
    first = service(tb_info, images_dir, tmp_path / "a")
    second = service(tb_info, images_dir, tmp_path / "b", database=first.database)
    with first.running():
        second.start()
        try:
            old = first.post("/v1/regions/Trento/tasks", token).headers["Location"]
            appears(glance, "Trento", name)
            with frozen("glance-Trento"):
                os.killpg(first.process.pid, signal.SIGSTOP)
                # the second instance's lease loop sweeps the frozen one's task
                wait_until(lambda: row(second, old)["status"] == "failed", 60)
                taken = second.post("/v1/regions/Trento/tasks", token)
                assert taken.status_code == 202, taken.text
                left = row(second, old)
                assert (left["status"], left["message"]) == ("failed", INTERRUPTED)
            os.killpg(first.process.pid, signal.SIGCONT)
            final = second.wait_task(taken.headers["Location"], token, timeout=60)
            wait_until(lambda: not marked_copies(glance, name), 30)
            # the thawed runner's sync ended and it decided about its final write
            wait_until(lambda: ENDED_LOST.search(first.logs()), 60)
            assert row(second, old) == left  # the frozen instance never wrote it again
            assert "lease lost" in first.logs()
            if final["status"] != "synced" or name not in region_images(glance("Trento")):
                again = second.post("/v1/regions/Trento/tasks", token).headers["Location"]
                assert second.wait_task(again, token, timeout=60)["status"] == "synced"
            one_verified_copy(glance, "Trento", name, master.md5)
        finally:
            second.stop()


def marked_copies(glance, name: str) -> list[dict]:
    return [
        dict(image)
        for image in glance("Trento").images.list()
        if image["name"] == name and UPLOAD_MARKER in image
    ]
