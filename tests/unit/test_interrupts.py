"""SIGINT/SIGTERM in the library path (issue 11, item 1): the signal flag is the cancel
check, so an upload stops between chunks and queued regions never start. Real signals to a
real ``glancesync`` process: tests/integration/test_interrupts_real.py."""

from __future__ import annotations

import logging
import os
import signal
import threading

import pytest

from glancesync.batch import SyncOptions
from glancesync.errors import Cancelled, Interrupted
from glancesync.interrupts import SignalStop, Stop, stop_on_signals
from tests.support.chunked_uploads import SIZES, ChunkedUploads, names
from tests.support.syncworld import REGIONS, build_world


@pytest.fixture
def world(monkeypatch):
    return build_world(monkeypatch, ChunkedUploads, SIZES)


def test_an_interrupted_region_deletes_its_half_image_and_says_so(world, log_lines):
    gs, store, _, backends = world
    stop = Stop()
    counted = backends["master"].chunks
    log = logging.getLogger("interrupt-test")
    log.setLevel(logging.INFO)
    lines = log_lines(log)

    def check() -> bool:
        if counted["Burgos"] >= 2:
            stop.request(signal.SIGINT)
        return stop()

    result = gs.sync_region("Burgos", log=log, should_cancel=check)
    assert result.failed
    assert counted["Burgos"] == 2  # stopped between chunks, not at the end of image1
    assert names(store, "Burgos") == []
    message = "interrupted by SIGINT; half-uploaded images deleted"
    assert f"ERROR:Burgos: {message}" in lines.lines
    assert result.error == message


def test_queued_batches_do_not_start_after_a_signal(world):
    gs, store, _, backends = world
    stop = Stop()
    counted = backends["master"].chunks
    listed: list[str] = []
    master = backends["master"]
    original = master.inner.list_images

    def listing(region: str):
        listed.append(region)
        return original(region)

    master.inner.list_images = listing

    def check() -> bool:
        if counted["Burgos"] >= 2:
            stop.request(signal.SIGTERM)
        return stop()

    results = gs.sync_regions(REGIONS, SyncOptions(max_workers=1, cancel=lambda ref: check()))
    message = "interrupted by SIGTERM; half-uploaded images deleted"
    assert [r.error for r in results] == [message] * 3
    assert "Caceres" not in listed  # never listed, planned nor started
    assert all(names(store, region) == [] for region in REGIONS)
    assert stop.exit_code == 143


def test_stop_is_a_cancel_check_that_raises_the_signal_name():
    stop = Stop()
    assert stop() is False and not stop.requested
    stop.request(signal.SIGINT)
    with pytest.raises(Interrupted) as caught:
        stop()
    assert isinstance(caught.value, Cancelled)
    assert str(caught.value) == "interrupted by SIGINT; half-uploaded images deleted"
    assert stop.exit_code == 130


def test_the_handlers_set_the_flag_then_give_up_on_a_second_signal():
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signum == signal.SIGTERM
        with pytest.raises(SignalStop):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # put back


def test_read_only_modes_stop_at_once():
    with pytest.raises(SignalStop) as caught, stop_on_signals(at_once=True):
        os.kill(os.getpid(), signal.SIGTERM)
    assert caught.value.signum == signal.SIGTERM


def test_outside_the_main_thread_nothing_is_installed():
    seen: list[object] = []

    def body() -> None:
        with stop_on_signals() as stop:
            seen.append(stop)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert isinstance(seen[0], Stop) and not seen[0].requested
