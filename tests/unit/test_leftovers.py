"""Leftovers of interrupted uploads are deleted by the next real sync (glancesync/leftovers.py).

The mock backend stands in for Glance: images carrying the upload marker and not active
are what a killed upload leaves; the real-Glance version is in tests/integration/test_faults.py.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from glancesync.backends import make_backends
from glancesync.backends.glance import UPLOAD_MARKER
from glancesync.backends.mock import MockStore
from glancesync.config import load_config
from glancesync.engine import GlanceSync
from glancesync.image import Image
from glancesync.leftovers import Runs, classify, cli_run_dead, marked

CONFIG = """
[main]
master_region = Valladolid
[master]
credential = user,cHc=,http://ks:5000/v3,tenant1
"""
MARK = {UPLOAD_MARKER: "in_progress"}


def image(name: str, id_: str, status: str = "active", owner: str = "tenant1id", **props) -> Image:
    return Image(
        name=name, id=id_, region="Burgos", owner=owner, is_public=True, checksum="c1",
        size=10, status=status, user_properties=dict(props),
    )  # fmt: skip


def test_only_marked_non_active_images_of_the_tenant_are_leftovers():
    images = [
        image("a", "1", "saving", **MARK),
        image("a", "2", "queued", **MARK),
        image("a", "3", "active", **MARK),  # verified but not unmarked: not ours to judge
        image("a", "4", "saving"),  # not created by glancesync
        image("a", "5", "saving", owner="someone-else", **MARK),
    ]
    assert [i.id for i in marked(images, "tenant1id")] == ["1", "2"]


def run(store: MockStore, dry_run: bool, caplog) -> list[str]:
    config = load_config(text=CONFIG, environ={})
    gs = GlanceSync(config, make_backends(config, environ={}, store=store))
    with caplog.at_level(logging.INFO, logger="GlanceSync-Client"):
        result = gs.sync_region("Burgos", dry_run=dry_run)
    assert not result.failed
    return [image.id for image in store.images("Burgos")]


def test_a_real_sync_deletes_leftovers_and_uploads_again(caplog):
    store = MockStore(
        {
            "Valladolid": [image("a", "m1").copy(region="Valladolid")],
            "Burgos": [image("a", "b1", "saving", **MARK), image("x", "b2", "queued", **MARK)],
        }
    )
    left = run(store, dry_run=False, caplog=caplog)
    assert "b1" not in left and "b2" not in left and len(left) == 1
    assert "Burgos: Deleting leftover image b1 of an interrupted upload" in caplog.messages
    assert "Burgos: Deleting leftover image b2 of an interrupted upload" in caplog.messages


def test_a_dry_run_deletes_nothing(caplog):
    store = MockStore(
        {
            "Valladolid": [image("a", "m1").copy(region="Valladolid")],
            "Burgos": [image("a", "b1", "saving", **MARK)],
        }
    )
    assert run(store, dry_run=True, caplog=caplog) == ["b1"]


def test_a_failed_delete_is_a_warning_and_the_sync_goes_on(caplog):
    store = MockStore(
        {
            "Valladolid": [image("a", "m1").copy(region="Valladolid")],
            "Burgos": [image("a", "b1", "saving", **MARK)],
        }
    )
    store.fail_on("Burgos", "delete", after=0, cause="server gone")
    left = run(store, dry_run=False, caplog=caplog)
    assert "b1" in left and len(left) == 2  # the leftover stays, the image is uploaded
    assert "Burgos: Deletion of image b1 Failed. Cause: server gone" in caplog.messages


# -- overlapping runs (issue 11, item 2): age and run of a marked image -----------------
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def aged(id_: str, seconds: int, run_id: str, name: str = "a") -> Image:
    created = (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    theirs = image(name, id_, "saving", **{UPLOAD_MARKER: run_id})
    return theirs.copy(created_at=created)


def runs(run_id: str = "me", dead: frozenset[str] = frozenset()) -> Runs:
    return Runs(run_id=run_id, is_dead=lambda other: other in dead, now=lambda: NOW)


def test_a_young_marked_image_of_another_run_is_busy_not_a_leftover():
    found = classify([aged("1", 60, "other", name="img")], "tenant1id", runs(), max_age=3600)
    assert found.leftovers == [] and found.busy == {"img"}


def test_old_dead_own_and_undated_marked_images_are_leftovers():
    images = [
        aged("old", 3601, "other"),
        aged("dead", 5, "gone", name="b"),
        aged("own", 5, "me", name="c"),
        image("d", "undated", "saving", **MARK),  # no created_at (an old mock): as before
    ]
    found = classify(images, "tenant1id", runs(dead=frozenset({"gone"})), max_age=3600)
    assert [i.id for i in found.leftovers] == ["old", "dead", "own", "undated"]
    assert found.busy == frozenset()


def test_a_cli_run_of_this_host_is_dead_once_its_process_is_gone():
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    host = socket.gethostname()
    assert cli_run_dead(f"cli:{host}:{child.stdout.strip()}:abcd")
    assert not cli_run_dead(f"cli:{host}:{os.getppid()}:abcd")  # alive
    assert not cli_run_dead(f"cli:{host}:{os.getpid()}:abcd")  # this process
    assert not cli_run_dead("cli:another-host:1:abcd")  # cannot tell: alive
    assert not cli_run_dead("task:1234")  # not a CLI run
    assert not cli_run_dead("in_progress")  # before run ids


def test_another_runs_upload_is_skipped_with_a_warning_and_not_deleted(caplog):
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    theirs = image("a", "b1", "saving", **{UPLOAD_MARKER: "cli:elsewhere:1:x"})
    store = MockStore(
        {
            "Valladolid": [image("a", "m1").copy(region="Valladolid")],
            "Burgos": [theirs.copy(created_at=created)],
        }
    )
    assert run(store, dry_run=False, caplog=caplog) == ["b1"]  # no second copy, b1 kept
    assert "Burgos: a is being uploaded by another run; skipped" in caplog.messages
    assert not any("Deleting leftover" in message for message in caplog.messages)


def test_a_marked_image_older_than_leftover_age_is_deleted(caplog):
    created = (datetime.now(UTC) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    theirs = image("a", "b1", "saving", **{UPLOAD_MARKER: "cli:elsewhere:1:x"})
    store = MockStore(
        {
            "Valladolid": [image("a", "m1").copy(region="Valladolid")],
            "Burgos": [theirs.copy(created_at=created)],
        }
    )
    config = load_config(text=CONFIG + "leftover_age = 10\n", environ={})
    gs = GlanceSync(config, make_backends(config, environ={}, store=store))
    with caplog.at_level(logging.INFO, logger="GlanceSync-Client"):
        assert not gs.sync_region("Burgos").failed
    assert "Burgos: Deleting leftover image b1 of an interrupted upload" in caplog.messages
    assert [i.id for i in store.images("Burgos")] != ["b1"] and len(store.images("Burgos")) == 1


def test_the_marker_names_the_run(caplog):
    """The executor gives the backend the run id as the marker's value."""
    store = MockStore({"Valladolid": [image("a", "m1").copy(region="Valladolid")], "Burgos": []})
    config = load_config(text=CONFIG, environ={})
    backends = make_backends(config, environ={}, store=store)
    seen: list[dict] = []
    inner = backends["master"].upload

    def upload(region, master, is_public, properties, source, progress=None):
        seen.append(dict(properties))
        return inner(region, master, is_public, properties, source, progress)

    backends["master"].upload = upload
    gs = GlanceSync(config, backends)
    gs.sync_region("Burgos", runs=Runs(run_id="task:42"))
    assert seen[0][UPLOAD_MARKER] == "task:42"
    assert UPLOAD_MARKER not in store.images("Burgos")[0].user_properties


def test_an_upload_another_run_started_after_the_listing_is_skipped(caplog):
    """Asked again right before each upload: here another run starts uploading b after
    this run listed the region (the first upload, of a, is when it happens)."""
    store = MockStore(
        {
            "Valladolid": [image("a", "m1").copy(region="Valladolid"),
                           image("b", "m2").copy(region="Valladolid")],
            "Burgos": [],
        }
    )  # fmt: skip
    config = load_config(text=CONFIG, environ={})
    backends = make_backends(config, environ={}, store=store)
    started: list[str] = []

    class Rechecking:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def upload(self, region, master, *args, **kwargs):
            started.append(master.name)
            return self.inner.upload(region, master, *args, **kwargs)

        def images_named(self, region: str, name: str) -> list[Image]:
            if name != "b" or not started:
                return []
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            theirs = image("b", "x", "saving", **{UPLOAD_MARKER: "task:other"})
            return [theirs.copy(created_at=now)]

    gs = GlanceSync(config, {k: Rechecking(b) for k, b in backends.items()})
    with caplog.at_level(logging.INFO, logger="GlanceSync-Client"):
        result = gs.sync_region("Burgos")
    assert not result.failed and started == ["a"]
    assert "Burgos: b is being uploaded by another run; skipped" in caplog.messages
    entry = next(e for e in result.images if e.name == "b")
    assert (entry.result, entry.error) == ("not_run", "being uploaded by another run")


def test_the_age_is_measured_by_the_regions_clock_when_it_has_one(caplog):
    """A host whose clock is an hour behind Glance's still sees a two-hour-old image as
    old: the age is Glance's now minus Glance's created_at."""
    glance_now = datetime.now(UTC) + timedelta(hours=1)
    created = (glance_now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    theirs = image("a", "b1", "saving", **{UPLOAD_MARKER: "cli:elsewhere:1:x"})
    store = MockStore(
        {
            "Valladolid": [image("a", "m1").copy(region="Valladolid")],
            "Burgos": [theirs.copy(created_at=created)],
        }
    )
    config = load_config(text=CONFIG + "leftover_age = 5400\n", environ={})  # 1.5 h

    class WithClock:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def server_now(self, region: str) -> datetime:
            return glance_now

    backends = make_backends(config, environ={}, store=store)
    gs = GlanceSync(config, {k: WithClock(b) for k, b in backends.items()})
    slow_host = Runs(now=lambda: glance_now - timedelta(hours=1), is_dead=lambda r: False)
    with caplog.at_level(logging.INFO, logger="GlanceSync-Client"):
        assert not gs.sync_region("Burgos", runs=slow_host).failed
    assert "Burgos: Deleting leftover image b1 of an interrupted upload" in caplog.messages
