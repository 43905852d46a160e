"""Overlapping runs on the testbed (issue 11, item 2; reference 6.9): two real ``glancesync Trento``
processes at once never destroy each other's upload and leave one verified copy.

* one host (one ``lock_dir``): the second run fails the region at once (``lock_wait = 0``)
  or waits for the first and then finds the region synchronised;
* two hosts (two ``lock_dir``s): the second run sees the first one's young marked image
  and skips that image instead of deleting it and uploading a second copy;
* a marked image older than ``leftover_age`` is deleted as a leftover.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cli_process import SlowFeed, finish, start_cli
from fixtures_glance import MasterImage, config_text, region_images, unique

from glancesync.backends.base import UPLOAD_MARKER
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.concurrency,
    pytest.mark.usefixtures("clean_glance"),
]

MB = 1024 * 1024
BUSY = "ERROR:Trento: another glancesync run is syncing this region"


@pytest.fixture
def slow_master(add_image, images_dir: Path):
    feeds: list[SlowFeed] = []

    def make(size: int = 12 * MB) -> tuple[MasterImage, SlowFeed]:
        data = os.urandom(size)
        made = add_image(unique("overlap"), data=data)
        feed = SlowFeed(images_dir / made.id, data)
        feeds.append(feed)
        return made, feed

    yield make
    for feed in feeds:
        feed.close()


def write_config(path: Path, tb_info, images_dir: Path, lock_dir: Path, main: str = "") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = path / "glancesync.conf"
    config.write_text(config_text(tb_info, images_dir, main=f"lock_dir = {lock_dir}\n{main}"))
    config.chmod(0o600)
    return config


def one_verified_copy(glance, made: MasterImage) -> None:
    images = list(glance("Trento").images.list())
    assert [(i["name"], i["status"]) for i in images] == [(made.name, "active")], images
    assert images[0]["checksum"] == made.md5 and UPLOAD_MARKER not in images[0]


def test_one_host_second_run_fails_the_region(tb_info, images_dir, tmp_path, slow_master, glance):
    made, feed = slow_master()
    locks = tmp_path / "locks"
    config = write_config(tmp_path / "a", tb_info, images_dir, locks)
    feed.hold(2 * MB)  # the first run's upload waits mid-image while the second runs
    first = start_cli(config, "Trento")
    feed.wait_for(2 * MB)
    code, out, err = finish(start_cli(config, "Trento"))
    feed.resume()
    assert code == 1, out + err
    assert BUSY in out.splitlines()
    assert "Uploading" not in out and "Deleting" not in out
    code, out, err = finish(first)
    assert code == 0, out + err
    one_verified_copy(glance, made)


def holds_open(pid: int, folder: Path) -> bool:
    """Whether process ``pid`` has a file of ``folder`` open: a run holds its region's lock
    file open from the moment it asks for the lock (and polls flock while another has it)."""
    fds = Path(f"/proc/{pid}/fd")
    return any(os.readlink(fd).startswith(f"{folder}/") for fd in fds.iterdir())


def test_one_host_second_run_waits_then_finds_the_region_synchronised(
    tb_info, images_dir, tmp_path, slow_master, glance
):
    made, feed = slow_master()
    locks = tmp_path / "locks"
    config = write_config(tmp_path / "a", tb_info, images_dir, locks, main="lock_wait = 60")
    feed.hold(2 * MB)
    first = start_cli(config, "Trento")
    feed.wait_for(2 * MB)
    second = start_cli(config, "Trento")
    wait_until(lambda: holds_open(second.pid, locks), 60, what="the second run at the lock")
    feed.resume()
    code, out, err = finish(first)
    assert code == 0, out + err
    code, out, err = finish(second)
    assert code == 0, out + err
    assert "INFO:Trento: Region is synchronized." in out.splitlines(), out
    one_verified_copy(glance, made)


def test_two_hosts_second_run_skips_the_image_being_uploaded(
    tb_info, images_dir, tmp_path, slow_master, glance
):
    made, feed = slow_master()
    first_config = write_config(tmp_path / "a", tb_info, images_dir, tmp_path / "locks-a")
    other_images = tmp_path / "images-b"  # host B has no local copy: it would use the API
    other_images.mkdir()
    second_config = write_config(tmp_path / "b", tb_info, other_images, tmp_path / "locks-b")
    feed.hold(2 * MB)
    first = start_cli(first_config, "Trento")
    feed.wait_for(2 * MB)
    code, out, err = finish(start_cli(second_config, "Trento"))
    feed.resume()
    assert code == 0, out + err
    warning = f"WARNING:Trento: {made.name} is being uploaded by another run; skipped"
    assert warning in out.splitlines(), out
    assert "Deleting leftover" not in out and "Uploading" not in out
    code, out, err = finish(first)
    assert code == 0, out + err  # its upload was not deleted under it
    one_verified_copy(glance, made)


def test_a_marked_image_older_than_leftover_age_is_deleted(add_image, glance, engine):
    made = add_image(unique("aged"))
    trento = glance("Trento")
    mark = {UPLOAD_MARKER: "cli:some-other-host:4242:abcd"}
    stale = trento.images.create(
        name=made.name, disk_format="raw", container_format="bare", visibility="public", **mark
    )
    gs, log = engine()  # leftover_age: the default hour
    assert not gs.sync_region("Trento").failed, log.lines
    assert f"WARNING:Trento: {made.name} is being uploaded by another run; skipped" in log.lines
    assert [i["id"] for i in trento.images.list()] == [stale["id"]]

    # time that must pass (the scenario): the mark must be older than leftover_age = 1,
    # and Glance's created_at has one-second steps
    time.sleep(2.1)
    gs, log = engine(master="leftover_age = 1")
    assert not gs.sync_region("Trento").failed, log.lines
    deleted = f"INFO:Trento: Deleting leftover image {stale['id']} of an interrupted upload"
    assert deleted in log.lines
    images = region_images(trento)
    assert images[made.name]["checksum"] == made.md5 and len(list(trento.images.list())) == 1


def test_an_upload_another_run_starts_after_the_listing_is_skipped(add_image, glance, engine):
    """Two hosts whose runs listed Trento at the same time: the check right before each
    upload sees the other run's marked image (created here when the first upload starts)."""
    first, second = add_image(unique("first")), add_image(unique("second"))
    trento = glance("Trento")
    theirs: list[dict] = []

    def progress(region: str, name: str, size: int):
        if not theirs:
            other = second if name == first.name else first
            mark = {UPLOAD_MARKER: "task:another-service"}
            theirs.append(
                trento.images.create(
                    name=other.name, disk_format="raw", container_format="bare", **mark
                )
            )
        return None

    gs, log = engine()
    assert not gs.sync_region("Trento", progress=progress).failed, log.lines
    skipped = theirs[0]["name"]
    assert f"WARNING:Trento: {skipped} is being uploaded by another run; skipped" in log.lines
    names = sorted(image["name"] for image in trento.images.list())
    assert names == sorted([first.name, second.name])  # theirs, and the one of this run
    assert dict(trento.images.get(theirs[0]["id"]))[UPLOAD_MARKER] == "task:another-service"


def test_the_age_of_a_marked_image_uses_glances_clock(make_config):
    from datetime import UTC, datetime

    from glancesync.backends.glance import GlanceBackend

    config = make_config()
    now = GlanceBackend(config.master, config).server_now("Trento")
    assert now is not None and abs((now - datetime.now(UTC)).total_seconds()) < 5


# -- the CLI and the REST service on one host ---------------------------------------------
@pytest.fixture
def service(testbed, tb_info, images_dir, tmp_path: Path):
    """The REST service under gunicorn on PostgreSQL, with the default lock_dir."""
    from service_process import ServiceProcess

    with ServiceProcess(tb_info, tmp_path / "service", images_dir).running() as process:
        yield process


def test_a_service_task_and_a_cli_run_exclude_each_other(
    tb_info, images_dir, tmp_path, slow_master, glance, service, os_session
):
    made, feed = slow_master()
    config = tmp_path / "cli" / "glancesync.conf"
    config.parent.mkdir()
    config.write_text(config_text(tb_info, images_dir))  # the default lock_dir, as the service
    config.chmod(0o600)
    feed.hold(2 * MB)
    cli_run = start_cli(config, "Trento")
    feed.wait_for(2 * MB)
    token = os_session("keystone-1").get_token()
    created = service.post("/v1/regions/Trento/tasks", token)
    assert created.status_code == 202, created.text
    task = service.wait_task(created.headers["Location"], token, timeout=60)
    feed.resume()
    assert (task["status"], task["message"]) == (
        "failed",
        "Trento: another glancesync run is syncing this region",
    ), task
    code, out, err = finish(cli_run)
    assert code == 0, out + err
    one_verified_copy(glance, made)
