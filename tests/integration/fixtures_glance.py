"""Fixtures for the real Glance backend tests: configs for the testbed, master images, cleanup.

Loaded from conftest.py through ``pytest_plugins``. Every test that writes images asks for
``clean_glance``, which empties the four Glance servers first, so tests never see each
other's images (the core syncs every public master image, so leftovers would slow every
later test down and change its statuses).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from glancesync.config import Config, load_config
from glancesync.engine import GlanceSync
from tests.support.logs import LoggerLines
from tests.support.waiting import wait_until

MASTER = "Spain2"


@pytest.fixture(scope="session")
def tb_info(testbed) -> dict[str, Any]:
    return testbed.info


@pytest.fixture(scope="session")
def glance(tb_info, os_session) -> Callable[[str], Any]:
    """Factory: an admin glanceclient v2 Client for a testbed region (test setup and checks)."""
    from glanceclient import Client

    clients: dict[str, Any] = {}

    def make(region: str) -> Any:
        if region not in clients:
            keystone = tb_info["regions"][region]["keystone"]
            clients[region] = Client("2", session=os_session(keystone), region_name=region)
        return clients[region]

    return make


def wipe_region(client: Any) -> None:
    """Empty a region, trying again while its Glance resets connections: a Glance worker
    busy with a failed server-side import may be replaced, and the client's pooled
    connection to the old one is reset on its next use."""
    wait_until(lambda: _wipe(client), 60, what="the region's images deleted")


def _wipe(client: Any) -> bool:
    hidden = client.images.list(filters={"os_hidden": "true"})  # the default listing omits them
    for image in [*client.images.list(), *hidden]:
        if image.get("protected"):
            client.images.update(image["id"], protected=False)
        client.images.delete(image["id"])
    return True


def wipe_all(tb_info: dict[str, Any], glance: Callable[[str], Any]) -> None:
    for region in tb_info["regions"]:
        wipe_region(glance(region))


@pytest.fixture
def clean_glance(tb_info, glance) -> Iterator[None]:
    """Every region starts empty (admin sees the images of every project) and is left so.

    Fixtures tear down in reverse order: a test that stops a server requests
    ``restart_after`` after this one, so the server is back before the final wipe.
    """
    wipe_all(tb_info, glance)
    yield
    wipe_all(tb_info, glance)


def unique(prefix: str = "img") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def config_text(
    tb_info: dict[str, Any],
    images_dir: str | Path,
    master: str = "",
    other: str | None = None,
    main: str = "",
    cred: dict[str, str] | None = None,
) -> str:
    """A glancesync INI for the testbed; ``master``/``other`` are extra lines of the sections.

    The keystone URLs are given without ``/v3`` so the backend's version handling is used.
    ``other=None`` leaves out the second target (keystone-2, region Madrid); ``cred``
    overrides fields of the master credential (user, password, keystone_url, tenant).
    """

    def credential(keystone: str, overrides: dict[str, str] | None = None) -> str:
        ks = tb_info["keystones"][keystone]
        fields = {
            "user": ks["admin"]["username"],
            "password": ks["admin"]["password"],
            "keystone_url": ks["url"].removesuffix("/v3"),
            "tenant": ks["admin"]["project_name"],
            **(overrides or {}),
        }
        return "".join(f"{key} = {value}\n" for key, value in fields.items())

    text = f"[main]\nmaster_region = {MASTER}\nimages_dir = {images_dir}\n{main}\n"
    text += f"[master]\n{credential('keystone-1', cred)}{master}\n"
    if other is not None:
        text += f"[other]\n{credential('keystone-2')}{other}\n"
    return text


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    path = tmp_path / "images"
    path.mkdir()
    return path


@pytest.fixture
def make_config(tb_info, images_dir) -> Callable[..., Config]:
    def make(**sections: Any) -> Config:
        return load_config(text=config_text(tb_info, images_dir, **sections), environ={})

    return make


@dataclass
class MasterImage:
    record: dict[str, Any]
    data: bytes

    @property
    def id(self) -> str:
        return self.record["id"]

    @property
    def name(self) -> str:
        return self.record["name"]

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()


@pytest.fixture
def add_image(glance) -> Callable[..., MasterImage]:
    """Factory: create an active image with random data (default in the master region)."""

    def add(
        name: str,
        size: int = 2048,
        public: bool = True,
        region: str = MASTER,
        data: bytes | None = None,
        disk_format: str = "raw",
        container_format: str = "bare",
        **fields: Any,
    ) -> MasterImage:
        client = glance(region)
        data = os.urandom(size) if data is None else data
        visibility = "public" if public else "private"
        record = client.images.create(
            name=name,
            visibility=visibility,
            disk_format=disk_format,
            container_format=container_format,
            **fields,
        )
        client.images.upload(record["id"], io.BytesIO(data), image_size=len(data))
        return MasterImage(dict(client.images.get(record["id"])), data)

    return add


@pytest.fixture
def engine(make_config, log_lines) -> Callable[..., tuple[GlanceSync, LoggerLines]]:
    """Factory: a GlanceSync on the real backends and the ``LEVEL:message`` lines of its
    log (caplog)."""

    def make(**sections: Any) -> tuple[GlanceSync, LoggerLines]:
        log = logging.getLogger(f"glancesync-test-{uuid.uuid4().hex[:6]}")
        log.propagate = False
        log.setLevel(logging.INFO)
        return GlanceSync(make_config(**sections), log=log), log_lines(log)

    return make


def region_images(client: Any) -> dict[str, dict[str, Any]]:
    """name -> record of a region (tests use unique names)."""
    return {image["name"]: dict(image) for image in client.images.list()}


def download(client: Any, image_id: str) -> bytes:
    return b"".join(client.images.data(image_id))


@pytest.fixture
def frozen(testbed) -> Iterator[Callable[..., contextlib.ExitStack]]:
    """Factory: freeze testbed servers (SIGSTOP: they accept but never answer).

    ``frozen("glance-Trento")`` freezes at once; used as ``with frozen(...):`` the servers
    are thawed at the end of the block. Every frozen server is thawed at teardown,
    whatever the test did.
    """
    held: list[str] = []

    def freeze(*names: str) -> contextlib.ExitStack:
        thaw = contextlib.ExitStack()
        for name in names:
            testbed.freeze_server(name)
            held.append(name)
            thaw.callback(testbed.thaw_server, name)
        return thaw

    yield freeze
    for name in held:
        testbed.thaw_server(name)


@pytest.fixture
def restart_after(testbed) -> Iterator[list[str]]:
    """Names of servers the test stops or kills; they are started again at teardown."""
    names: list[str] = []
    yield names
    for name in names:
        testbed.start_server(name)
