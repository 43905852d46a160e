"""Listing the master and the regions at once (``load_master(prefetch=...)``).

Every first request to a Glance waits while it validates the token with Keystone; the
engine lists the master and the regions about to be synced at the same time so those
waits overlap. What a user must see: the same statuses and errors as when the listings
ran one after the other, and no region listed earlier than it is about to be used.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

import pytest

from glancesync import cli
from glancesync.errors import BackendError
from tests.support.syncworld import REGIONS, build_world

MASTER = "Valladolid"


class GatedBackend:
    """A mock backend whose listings record their threads and can wait on a barrier."""

    def __init__(self, inner: Any, reads: Counter, lock: threading.Lock):
        self.inner, self.lock = inner, lock
        self.listed: list[tuple[str, str]] = []
        self.barrier: threading.Barrier | None = None
        self.fail: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def list_images(self, region: str):
        with self.lock:
            self.listed.append((region, threading.current_thread().name))
        if self.barrier is not None:
            self.barrier.wait(timeout=5)  # broken (an error) if the other listing never comes
        if region in self.fail:
            raise BackendError(f"{region}: Error retrieving image list. Cause: boom")
        return self.inner.list_images(region)


@pytest.fixture
def world(monkeypatch):
    gs, store, _, backends = build_world(monkeypatch, GatedBackend, [1000, 2000])
    return gs, backends["master"]


def test_the_master_and_the_region_are_listed_at_the_same_time(world):
    """Each listing waits for the other at a barrier: run one after the other, they
    would break it and the sync would fail."""
    gs, backend = world
    region = REGIONS[0]
    backend.barrier = threading.Barrier(2)
    result = gs.sync_region(region)
    assert not result.failed, result.error
    threads = dict(backend.listed)
    assert threads[MASTER] != threads[region]
    assert sorted(r for r, _ in backend.listed) == sorted([MASTER, region])  # once each


def test_a_prefetched_region_error_is_the_region_failure(world):
    gs, backend = world
    region = REGIONS[0]
    backend.fail = {region}
    result = gs.sync_region(region)
    assert result.failed
    assert result.error == f"{region}: Error retrieving image list. Cause: boom"


def test_a_master_error_wins_and_the_next_view_lists_the_region_again(world):
    gs, backend = world
    region = REGIONS[0]
    backend.fail = {MASTER}
    result = gs.sync_region(region)
    assert result.failed and result.error.startswith(f"{MASTER}: Error retrieving image list")
    backend.fail = set()
    backend.listed.clear()
    assert gs.region_statuses(region).images  # a fresh listing, not the dropped one
    assert sorted(r for r, _ in backend.listed) == sorted([MASTER, region])


def test_sequential_cli_prefetches_only_the_first_region(world, monkeypatch):
    """Regions synced one after the other are each listed when their turn comes."""
    gs, backend = world
    order: list[str] = []
    real_sync = gs.sync_region

    def sync_region(ref, *args: Any, **kw: Any):
        order.append(f"sync {ref.full}")
        return real_sync(ref, *args, **kw)

    monkeypatch.setattr(gs, "sync_region", sync_region)
    original = backend.list_images

    def list_images(region: str):
        order.append(f"list {region}")
        return original(region)

    monkeypatch.setattr(backend, "list_images", list_images)
    regions = gs.region_list(REGIONS[:2])
    assert cli.sync_sequential(gs, regions, False, logging.getLogger("t")) == 0
    second = REGIONS[1]
    assert order.index(f"list {second}") > order.index(f"sync {second}")
