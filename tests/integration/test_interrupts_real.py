"""SIGINT/SIGTERM sent to a real ``glancesync`` process in the middle of an upload to the
testbed (issue 11, item 1; reference 6.10): the upload stops between chunks, the half image
is deleted from Glance, each interrupted region logs its ``ERROR:`` line, queued regions do
not start, and the exit code is 130 (SIGINT) or 143 (SIGTERM). Sequential and
``--parallel``, with and without the shared master read (fan-out)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from cli_process import SlowFeed, finish, interrupt, start_cli
from fixtures_glance import config_text, region_images, unique

pytestmark = [
    pytest.mark.integration,
    pytest.mark.concurrency,
    pytest.mark.usefixtures("clean_glance"),
]

MB = 1024 * 1024
SIZE = 24 * MB  # about 5 s at the feed's pace: the signal comes well before the end


def message(region: str, signum: int) -> str:
    name = signal.Signals(signum).name
    return f"ERROR:{region}: interrupted by {name}; half-uploaded images deleted"


@pytest.fixture
def slow_master(add_image, images_dir: Path):
    """A master image whose data the CLI reads from a slow FIFO in images_dir."""
    feeds: list[SlowFeed] = []

    def make() -> tuple[str, SlowFeed]:
        data = os.urandom(SIZE)
        made = add_image(unique("sig"), data=data)
        feed = SlowFeed(images_dir / made.id, data)
        feeds.append(feed)
        return made.name, feed

    yield make
    for feed in feeds:
        feed.close()


def write_config(tmp_path: Path, tb_info, images_dir: Path, main: str = "") -> Path:
    config = tmp_path / "glancesync.conf"
    main += f"\nlock_dir = {tmp_path / 'locks'}"
    config.write_text(config_text(tb_info, images_dir, main=main))
    config.chmod(0o600)
    return config


def names_in(glance, region: str) -> list[str]:
    return sorted(region_images(glance(region)))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sequential_run_stops_mid_upload_and_skips_queued_regions(
    signum, tb_info, images_dir, tmp_path, slow_master, glance
):
    name, feed = slow_master()
    config = write_config(tmp_path, tb_info, images_dir)
    process = start_cli(config, "Trento", "Lannion")
    feed.wait_for(4 * MB)
    took = interrupt(process, signum)
    code, out, err = finish(process)
    assert code == 128 + signum, out + err
    lines = out.splitlines()
    assert message("Trento", signum) in lines, out
    assert "======Lannion" not in lines  # queued: not started
    assert not feed.finished  # stopped between chunks, not at the end of the image
    assert names_in(glance, "Trento") == [] and names_in(glance, "Lannion") == []
    print(f"{signal.Signals(signum).name}: sequential run ended {took:.2f} s after the signal")


def test_parallel_run_with_shared_read_stops_every_region(
    tb_info, images_dir, tmp_path, slow_master, glance
):
    name, feed = slow_master()
    config = write_config(tmp_path, tb_info, images_dir, main="max_children = 2")
    process = start_cli(config, "--parallel", "Trento", "Lannion")
    feed.wait_for(4 * MB)
    took = interrupt(process, signal.SIGTERM)
    code, out, err = finish(process)
    assert code == 143, out + err
    (folder,) = tmp_path.glob("sync_*")
    for region in ("Trento", "Lannion"):
        log = (folder / f"{region}.txt").read_text()
        assert message(region, signal.SIGTERM).removeprefix("ERROR:") in log, log
        assert f"Region {region} has finished with errors" in out
        assert names_in(glance, region) == []
    assert not feed.finished
    print(f"SIGTERM: --parallel (fan-out) run ended {took:.2f} s after the signal")


def test_parallel_run_in_batches_starts_no_queued_batch(
    tb_info, images_dir, tmp_path, slow_master, glance
):
    name, feed = slow_master()
    config = write_config(tmp_path, tb_info, images_dir, main="max_children = 1")
    process = start_cli(config, "--parallel", "Trento", "Lannion")
    feed.wait_for(4 * MB)
    took = interrupt(process, signal.SIGINT)
    code, out, err = finish(process)
    assert code == 130, out + err
    (folder,) = tmp_path.glob("sync_*")
    assert (
        message("Trento", signal.SIGINT).removeprefix("ERROR:")
        in (folder / "Trento.txt").read_text()
    )
    assert not (folder / "Lannion.txt").exists()  # its batch never started
    assert "Lannion" not in out
    assert names_in(glance, "Trento") == [] and names_in(glance, "Lannion") == []
    print(f"SIGINT: --parallel (no fan-out) run ended {took:.2f} s after the signal")
