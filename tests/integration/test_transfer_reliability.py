"""Transfers on the testbed: resumed downloads, retried uploads, integrity, token expiry.

Issue 7, items 2, 3 and 5 (the unit versions, with staged faults, are in
tests/unit/test_retry.py). Faults are injected deterministically: the master stream is
broken by a ``fault`` hook of the source after a given byte, and the target Glance is
frozen (SIGSTOP) from inside the source, so the upload is in flight when it happens.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_glance import MASTER, config_text, region_images, unique

from glancesync.backends.glance import UPLOAD_MARKER, GlanceBackend
from glancesync.backends.glance_data import ApiSource
from glancesync.backends.retry import RetryPolicy
from glancesync.config import load_config
from glancesync.errors import BackendError
from glancesync.image import Image
from testbed import Testbed
from tests.support.imagedata import image_for
from tests.support.streamfaults import with_fault

pytestmark = pytest.mark.integration

QUICK = RetryPolicy(attempts=4, wait=0.5, max_wait=2.0)
TOKEN_EXPIRATION = 6  # seconds; keystone accepts any value >= 0


def backend(config, **kwargs: Any) -> GlanceBackend:
    return GlanceBackend(config.targets["master"], config, retry=QUICK, **kwargs)


def master_view(b: GlanceBackend, image_id: str) -> Image:
    return next(i for i in b.list_images(MASTER) if i.id == image_id)


def break_once_after(limit: int) -> Callable[[Iterator[bytes], int], Iterator[bytes]]:
    """A fault (tests.support.streamfaults): the first stream raises ConnectionResetError after
    ``limit`` bytes."""
    used = [False]

    def fault(stream: Iterator[bytes], offset: int) -> Iterator[bytes]:
        if used[0]:
            return stream
        used[0] = True
        return _broken(stream, limit)

    return fault


def _broken(stream: Iterator[bytes], limit: int) -> Iterator[bytes]:
    done = 0
    try:
        for chunk in stream:
            if done + len(chunk) >= limit:
                yield chunk[: limit - done]
                raise ConnectionResetError(104, "Connection reset by peer (injected)")
            done += len(chunk)
            yield chunk
    finally:
        getattr(stream, "close", lambda: None)()


# --------------------------------------------------------------------------- Range resume


def test_glance_answers_a_range_with_206(add_image, glance, os_session, tb_info, clean_glance):
    """Glance 33's file store honours ``Range: bytes=K-`` on /v2/images/<id>/file."""
    made = add_image(unique("range"), size=300_000)
    url = f"{tb_info['regions'][MASTER]['glance_url']}/v2/images/{made.id}/file"
    response = os_session().get(url, headers={"Range": "bytes=123456-"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == "bytes 123456-299999/300000"
    assert response.content == made.data[123456:]


def test_a_broken_master_download_resumes_with_range(make_config, add_image, glance, clean_glance):
    """The master stream breaks once after 1.5 MB: the source asks for ``bytes=1500000-``,
    the hash goes on over the whole stream, and the upload verifies."""
    made = add_image(unique("resume"), size=3_000_000)
    b = backend(make_config())
    master = master_view(b, made.id)
    plain = b.image_source(MASTER, master)
    assert isinstance(plain, ApiSource)
    offsets: list[int] = []

    def counting(offset: int) -> Iterator[bytes]:
        offsets.append(offset)
        return plain.open_stream(offset)

    source = ApiSource(
        with_fault(counting, break_once_after(1_500_000)), made.id, master.size, QUICK
    )
    new = b.upload("Trento", master, True, {}, source)
    assert offsets == [0, 1_500_000] and source.resumed_at == [1_500_000]
    assert (new.checksum, new.os_hash_value) == (made.md5, master.os_hash_value)
    assert hashlib.md5(b"".join(glance("Trento").images.data(new.id))).hexdigest() == made.md5


def test_a_master_glance_killed_mid_download_resumes_once_it_is_back(
    make_config, add_image, glance, testbed, restart_after, clean_glance
):
    """The master Glance is SIGKILLed once 4 MB of a 40 MB image were read and started
    again in the background: reopening is retried until it answers, the rest comes with
    a Range request, and the region's copy is the master's."""
    server = f"glance-{MASTER}"
    restart_after.append(server)
    made = add_image(unique("mkill"), size=40_000_000)
    patient = RetryPolicy(attempts=8, wait=1.0, max_wait=4.0)  # ~20 s for the restart
    config = make_config()
    b = GlanceBackend(config.targets["master"], config, retry=patient)
    master = master_view(b, made.id)
    plain = b.image_source(MASTER, master)
    assert isinstance(plain, ApiSource)
    restarted = threading.Event()

    def restart() -> None:
        testbed.start_server(server)
        restarted.set()

    def kill_and_restart() -> None:
        testbed.kill_server(server)
        threading.Thread(target=restart, daemon=True).start()

    def kill_first_stream(stream: Iterator[bytes], offset: int) -> Iterator[bytes]:
        if offset:
            return stream
        return _calling_after(stream, 4_000_000, kill_and_restart)

    source = ApiSource(
        with_fault(plain.open_stream, kill_first_stream), made.id, master.size, patient
    )
    new = b.upload("Trento", master, True, {}, source)
    assert restarted.is_set()
    assert len(source.resumed_at) == 1 and 4_000_000 <= source.resumed_at[0] < master.size
    assert (new.checksum, new.os_hash_value) == (made.md5, master.os_hash_value)
    assert [i["status"] for i in region_images(glance("Trento")).values()] == ["active"]


def _calling_after(stream: Iterator[bytes], limit: int, action: Callable[[], None]):
    """``stream`` as it is, calling ``action`` once when ``limit`` bytes have gone by."""
    done, called = 0, False
    try:
        for chunk in stream:
            done += len(chunk)
            yield chunk
            if done >= limit and not called:
                called = True
                action()
    finally:
        getattr(stream, "close", lambda: None)()


# --------------------------------------------------------------------------- integrity


def test_wrong_master_multihash_is_caught_and_leaves_no_image(
    make_config, add_image, glance, clean_glance
):
    made = add_image(unique("hash"), size=5000)
    b = backend(make_config())
    master = master_view(b, made.id)
    right = master.os_hash_value
    master.os_hash_value = "0" * 128  # md5 right, sha512 wrong
    with pytest.raises(BackendError) as info:
        b.upload("Lannion", master, True, {}, b.image_source(MASTER, master))
    assert str(info.value) == (
        f"Lannion: Upload of {made.name} Failed. Cause: multihash mismatch "
        f"(expected {'0' * 128}, got {right})"
    )
    assert region_images(glance("Lannion")) == {}


# --------------------------------------------------------------------------- retried upload


class FreezingSource:
    """A local image whose first read freezes the target Glance after the first chunk and
    thaws it ``thaw_after`` seconds later, so the upload request hangs mid-flight."""

    def __init__(
        self, data: bytes, freeze: Callable[[], None], thaw: Callable[[], None], thaw_after: float
    ):
        self.data, self.size = data, len(data)
        self.freeze, self.thaw, self.thaw_after = freeze, thaw, thaw_after
        self.reads = 0

    def chunks(self) -> Iterator[bytes]:
        self.reads += 1
        step = 256 * 1024
        for i in range(0, self.size, step):
            if i == step and self.reads == 1:
                self.freeze()
                threading.Timer(self.thaw_after, self.thaw).start()
            yield self.data[i : i + step]


def test_a_frozen_region_times_out_and_the_retry_completes(
    make_config, testbed, glance, clean_glance, caplog
):
    data = bytes(range(256)) * 8192  # 2 MiB
    name = unique("frozen")
    master = image_for(data, name=name, id="not-in-master", is_public=True)
    b = backend(make_config(), data_timeout=2.0)
    b.list_images("Trento")  # token and catalog before the fault

    def freeze() -> None:
        testbed.freeze_server("glance-Trento")

    source = FreezingSource(data, freeze, lambda: testbed.thaw_server("glance-Trento"), 3.0)
    caplog.set_level(logging.WARNING, logger="glancesync.backends.retry")
    try:
        new = b.upload("Trento", master, True, {}, source)
    finally:
        testbed.thaw_server("glance-Trento")
    assert source.reads >= 2
    assert any("retrying in" in r.getMessage() for r in caplog.records)
    assert new.checksum == master.checksum and new.status == "active"
    images = region_images(glance("Trento"))
    assert list(images) == [name] and UPLOAD_MARKER not in images[name]


# --------------------------------------------------------------------------- token expiry


@pytest.fixture(scope="module")
def short_token_testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """A second testbed whose keystone-1 issues tokens valid ``TOKEN_EXPIRATION`` seconds.

    Not the session testbed: other tests (and other sessions reusing it) need long tokens,
    and the testbed API cannot restart one Keystone with another expiration. Not
    ``start(token_expiration=8)`` either: the testbed fills its Keystones with one admin
    token, which expires midway on a busy machine. So the testbed starts with the default,
    then keystone-1's ``[token] expiration`` is lowered in its own workdir and it restarts.
    """
    tb = Testbed(tmp_path_factory.mktemp("tb-short-token"))
    try:
        tb.start()
        conf = Path(tb.servers["keystone-1"].conf_dir) / "keystone.conf"
        text, count = re.subn(
            r"(?m)^expiration = \d+$", f"expiration = {TOKEN_EXPIRATION}", conf.read_text()
        )
        assert count == 1, "keystone.conf has no [token] expiration line"
        conf.write_text(text)
        tb.stop_server("keystone-1")
        tb.start_server("keystone-1")
        yield tb
    finally:
        tb.stop()


class SlowSource:
    """Bytes sent slowly, so one upload lasts longer than a token."""

    def __init__(self, data: bytes, seconds: float, pieces: int = 10):
        self.data, self.size, self.seconds, self.pieces = data, len(data), seconds, pieces

    def chunks(self) -> Iterator[bytes]:
        step = -(-self.size // self.pieces)
        for i in range(0, self.size, step):
            time.sleep(self.seconds / self.pieces)
            yield self.data[i : i + step]


def record_tokens(b: GlanceBackend) -> list[str]:
    """Every token Keystone issues to the backend (one per POST /v3/auth/tokens)."""
    plugin = b._auth_plugin()
    issued: list[str] = []
    original = plugin.get_auth_ref

    def get_auth_ref(session: Any, **kwargs: Any) -> Any:
        ref = original(session, **kwargs)
        issued.append(ref.auth_token)
        return ref

    plugin.get_auth_ref = get_auth_ref
    return issued


def token_is_valid(tb: Testbed, token: str) -> bool:
    """Keystone's own answer (GET /v3/auth/tokens), asked with a fresh admin token."""
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    ks = tb.info["keystones"]["keystone-1"]
    admin = session.Session(auth=v3.Password(auth_url=ks["url"], **ks["admin"]))
    answer = admin.get(
        f"{ks['url']}/auth/tokens", headers={"X-Subject-Token": token}, raise_exc=False
    )
    return answer.status_code == 200


def test_a_token_expiring_mid_upload_does_not_fail_it(short_token_testbed: Testbed, tmp_path: Path):
    tb = short_token_testbed
    config = load_config(text=config_text(tb.info, tmp_path), environ={})
    b = backend(config)
    issued = record_tokens(b)
    assert b.list_images("Trento") == []
    first = issued[0]
    data = bytes(range(256)) * 4096
    master = image_for(data, name=unique("long"), id="not-in-master")
    # The upload lasts longer than the first token: verify and unmark run after it expired.
    new = b.upload("Trento", master, False, {}, SlowSource(data, TOKEN_EXPIRATION + 2.0))
    assert new.checksum == master.checksum
    assert not token_is_valid(tb, first)  # really expired, not just refreshed early
    assert [i.id for i in b.list_images("Trento")] == [new.id]  # same backend object
    assert len(set(issued)) >= 2 and issued[-1] != first
    b.delete("Trento", new.id)
