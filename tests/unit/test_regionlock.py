"""One sync of a region at a time on a host (issue 11, item 2): the region lock file.

The real two-process version (two ``glancesync Trento`` at once) is in
tests/integration/test_overlap_real.py."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from glancesync.backends import make_backends
from glancesync.backends.mock import MockStore
from glancesync.batch import SyncOptions
from glancesync.config import load_config
from glancesync.engine import GlanceSync
from glancesync.errors import Cancelled, ConfigError
from glancesync.image import Image
from glancesync.regionlock import BUSY, RegionBusy, RegionLock, lock_path, usable_lock_dir
from tests.support.waiting import wait_until

pytestmark = pytest.mark.concurrency


def test_a_held_lock_makes_the_second_run_fail_after_its_wait(tmp_path):
    path = str(tmp_path / "r.lock")
    first, second = RegionLock(path), RegionLock(path)
    first.acquire(0)
    start = time.monotonic()
    with pytest.raises(RegionBusy, match=BUSY):
        second.acquire(0.3)
    assert time.monotonic() - start >= 0.3 and second.waited
    first.release()
    second.acquire(0)  # free again
    second.release()


def test_a_lock_held_by_another_process_is_freed_when_it_dies(tmp_path):
    path = str(tmp_path / "r.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDONLY|os.O_CREAT);"
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)", path],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RegionBusy):
            RegionLock(path).acquire(0)
    finally:
        holder.kill()
        holder.wait()
    lock = RegionLock(path)
    lock.acquire(0)  # no stale lock after a kill
    lock.release()


def test_a_wait_ends_at_the_cancel(tmp_path):
    path = str(tmp_path / "r.lock")
    first = RegionLock(path)
    first.acquire(0)
    with pytest.raises(Cancelled):
        RegionLock(path).acquire(60, should_cancel=lambda: True)
    first.release()


def test_an_unusable_lock_dir_falls_back_to_the_temp_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert usable_lock_dir(str(blocker / "locks")) == str(tmp_path / "glancesync-locks")
    assert usable_lock_dir(str(tmp_path / "mine")) == str(tmp_path / "mine")


def test_lock_names_differ_by_cloud_not_by_spelling(tmp_path):
    a = lock_path(str(tmp_path), "http://ks:5000/v3|Trento", "Trento")
    b = lock_path(str(tmp_path), "http://other:5000/v3|Trento", "Trento")
    assert a != b and os.path.basename(a).startswith("Trento-")


# -- the engine: a real sync holds the lock, a busy region fails alone ------------------
CONFIG = """
[main]
master_region = Valladolid
lock_dir = {lock_dir}
[master]
credential = user,cHc=,http://ks:5000/v3,tenant1
"""


class Lockable:
    """A MockBackend with a lock key, as the real backend has."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def lock_key(self, region: str) -> str:
        return f"http://ks:5000/v3|{region}"


def engine(tmp_path) -> tuple[GlanceSync, MockStore]:
    master = Image(name="a", id="m1", owner="tenant1id", is_public=True, checksum="c", size=3)
    store = MockStore({"Valladolid": [master], "Burgos": [], "Caceres": []})
    config = load_config(text=CONFIG.format(lock_dir=tmp_path / "locks"), environ={})
    backends = {k: Lockable(b) for k, b in make_backends(config, {}, store=store).items()}
    return GlanceSync(config, backends, logging.getLogger("lock-test")), store


def test_a_busy_region_fails_and_the_others_go_on(tmp_path, caplog):
    gs, store = engine(tmp_path)
    held = RegionLock(lock_path(str(tmp_path / "locks"), "http://ks:5000/v3|Burgos", "Burgos"))
    os.makedirs(tmp_path / "locks", exist_ok=True)
    held.acquire(0)
    with caplog.at_level(logging.INFO, logger="lock-test"):
        results = gs.sync_regions(["Burgos", "Caceres"], SyncOptions(max_workers=2))
    assert results[0].failed and results[0].error == f"Burgos: {BUSY}"
    assert f"Burgos: {BUSY}" in caplog.messages
    assert not results[1].failed and [i.name for i in store.images("Caceres")] == ["a"]
    assert store.images("Burgos") == []
    assert not gs.sync_region("Burgos", dry_run=True).failed  # a dry run takes no lock
    held.release()
    assert not gs.sync_region("Burgos").failed  # the lock was given back by the others


def test_lock_options_are_validated():
    text = "[main]\nmaster_region = V\n{}\n[master]\ncredential = u,cHc=,http://ks/v3,t\n"
    config = load_config(text=text.format("lock_wait = 5\nlock_dir = /x"), environ={})
    assert (config.main.lock_wait, config.main.lock_dir) == (5, "/x")
    assert load_config(text=text.format(""), environ={}).main.lock_dir == "/run/lock/glancesync"
    assert load_config(text=text.format(""), environ={}).master.leftover_age == 3600
    with pytest.raises(ConfigError, match="lock_wait"):
        load_config(text=text.format("lock_wait = soon"), environ={})
    with pytest.raises(ConfigError, match="leftover_age"):
        load_config(text=text.format("") + "leftover_age = -1\n", environ={})


def test_a_signal_ends_the_wait_for_a_busy_region(tmp_path, caplog):
    import signal

    from glancesync.interrupts import Stop

    gs, store = engine(tmp_path)
    gs.config.main.lock_wait = 60
    os.makedirs(tmp_path / "locks", exist_ok=True)
    held = RegionLock(lock_path(str(tmp_path / "locks"), "http://ks:5000/v3|Burgos", "Burgos"))
    held.acquire(0)
    stop = Stop()
    stop.request(signal.SIGTERM)
    with caplog.at_level(logging.INFO, logger="lock-test"):
        result = gs.sync_region("Burgos", should_cancel=stop)
    held.release()
    message = "interrupted by SIGTERM; half-uploaded images deleted"
    assert result.failed and result.error == message
    assert f"Burgos: {message}" in caplog.messages and store.images("Burgos") == []


def test_a_listing_prefetched_before_another_run_ended_is_not_used(tmp_path):
    """The master listing prefetches the region; another run then uploads the image and
    gives the lock back before this run takes it: the region is listed again."""
    gs, store = engine(tmp_path)
    listings: list[str] = []
    backend = gs.backends["master"]
    original = backend.inner.list_images

    def listing(region: str):
        listings.append(region)
        return original(region)

    backend.inner.list_images = listing
    ref = gs.parse("Burgos")
    catalogue = gs.load_master(prefetch=[ref])
    wait_until(lambda: "Burgos" in listings, 10, step=0.01, what="the prefetch to list Burgos")
    os.makedirs(tmp_path / "locks", exist_ok=True)
    other = RegionLock(lock_path(str(tmp_path / "locks"), "http://ks:5000/v3|Burgos", "Burgos"))
    other.acquire(0)
    done = store.images("Valladolid")[0].copy(region="Burgos", id="theirs")
    store.add_region("Burgos", [done])  # what the other run uploaded
    time.sleep(0.01)  # time that must pass: the release's mtime (coarse) follows the prefetch
    other.release()
    assert not gs.sync_region(ref, catalogue=catalogue).failed
    assert listings.count("Burgos") == 2
    assert [image.id for image in store.images("Burgos")] == ["theirs"]  # no second copy


# -- the mock backend locks as the real one does (its key names its store) --------------
def mock_engine(tmp_path, folder) -> tuple[GlanceSync, MockStore]:
    """A plain mock backend (no lock key added) on the persistent store ``folder``."""
    master = Image(name="a", id="m1", owner="tenant1id", is_public=True, checksum="c", size=3)
    store = MockStore.persistent(str(folder))
    store.add_region("Valladolid", [master])
    store.add_region("Burgos")
    config = load_config(text=CONFIG.format(lock_dir=tmp_path / "locks"), environ={})
    gs = GlanceSync(config, make_backends(config, {}, store=store), logging.getLogger("lock-test"))
    return gs, store


def blocked_run(gs: GlanceSync, store: MockStore):
    """Start a sync of Burgos that holds its lock inside its upload until released."""
    import threading

    entered, release = threading.Event(), threading.Event()
    original = store.upload

    def upload(*args: Any, **kw: Any):
        entered.set()
        assert release.wait(60)
        return original(*args, **kw)

    store.upload = upload  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: results.append(gs.sync_region("Burgos")))
    results: list[Any] = []
    thread.start()
    assert entered.wait(60)
    return release, thread, results


def test_two_runs_on_one_mock_store_exclude_each_other(tmp_path):
    first, store = mock_engine(tmp_path, tmp_path / "store")
    second, _ = mock_engine(tmp_path, tmp_path / "store")
    release, thread, results = blocked_run(first, store)
    try:
        busy = second.sync_region("Burgos")
    finally:
        release.set()
        thread.join(10)
    assert busy.failed and busy.error == f"Burgos: {BUSY}"
    assert not results[0].failed


def test_mock_stores_with_a_same_named_region_do_not_contend(tmp_path):
    first, store = mock_engine(tmp_path, tmp_path / "one")
    second, other = mock_engine(tmp_path, tmp_path / "two")
    release, thread, results = blocked_run(first, store)
    try:
        alone = second.sync_region("Burgos")
    finally:
        release.set()
        thread.join(10)
    assert not alone.failed and [i.name for i in other.images("Burgos")] == ["a"]
    assert not results[0].failed


def test_the_mock_lock_key_names_its_store():
    a, b = MockStore(), MockStore()
    config = load_config(text=CONFIG.format(lock_dir="/x"), environ={})
    key_a = make_backends(config, {}, store=a)["master"].lock_key("Burgos")
    key_b = make_backends(config, {}, store=b)["master"].lock_key("Burgos")
    assert key_a != key_b and key_a.endswith("|Burgos")
