"""Server-side copies (target option ``transfer``): the path choice, the configuration
checks, and the executor on the mock (README "Server-side copies")."""

from __future__ import annotations

import logging

import pytest

from glancesync import transfer as tr
from glancesync.backends import make_backends
from glancesync.backends.mock import MockBackend, MockStore
from glancesync.config import load_config
from glancesync.engine import GlanceSync
from glancesync.errors import BackendError, Cancelled, ConfigError
from glancesync.image import Image

CONFIG = """
[main]
master_region = Valladolid

[master]
credential = user,ZmFrZXBhc3N3b3JkLG9mY291cnNl,http://server:5000/v3,tenant1
{master}

[other]
credential = user2,ZmFrZXBhc3N3b3JkLG9mY291cnNl,http://server2:5000/v3,tenant2
{other}
"""
MB = 1048576


def config(master: str = "", other: str = ""):
    return load_config(text=CONFIG.format(master=master, other=other), environ={})


# --------------------------------------------------------------------------- the choice


@pytest.mark.parametrize(
    ("target", "transfer", "advertised", "path"),
    [
        ("master", "proxy", None, "proxy"),
        ("master", "glance-download", None, "glance-download"),
        ("master", "auto", True, "glance-download"),
        ("master", "auto", False, "proxy"),
        ("other", "auto", None, "proxy"),
        ("other", "proxy", None, "proxy"),
    ],
)
def test_region_path(target, transfer, advertised, path):
    assert tr.region_path(target, transfer, advertised) == path


@pytest.mark.parametrize(
    ("region", "converts", "path"),
    [
        ("glance-download", False, "glance-download"),
        ("glance-download", True, "proxy"),  # this host converts it: it crosses this host
        ("proxy", True, "proxy"),
        ("proxy", False, "proxy"),
    ],
)
def test_image_path_with_conversion(region, converts, path):
    assert tr.image_path(region, converts) == path


def test_only_auto_of_the_master_target_asks_the_region():
    assert tr.needs_probe("master", "auto")
    assert not tr.needs_probe("other", "auto")
    assert not tr.needs_probe("master", "glance-download")
    assert not tr.needs_probe("master", "proxy")


def test_only_auto_falls_back():
    assert tr.falls_back("auto")
    assert not tr.falls_back("glance-download")
    assert not tr.falls_back("proxy")


# --------------------------------------------------------------------------- configuration


def test_defaults():
    target = config().targets["master"]
    assert (target.transfer, target.import_timeout, target.import_interface) == ("proxy", 1800, "")


def test_options_read():
    cfg = config(master="transfer = glance-download\nimport_timeout = 60", other="transfer = AUTO")
    assert (cfg.targets["master"].transfer, cfg.targets["master"].import_timeout) == (
        "glance-download",
        60,
    )
    assert cfg.targets["other"].transfer == "auto"


def test_glance_download_for_another_keystone_is_a_configuration_error():
    with pytest.raises(ConfigError) as err:
        config(other="transfer = glance-download")
    text = str(err.value)
    assert "[other]" in text and "transfer" in text and "master's Keystone" in text


def test_unknown_transfer_is_a_configuration_error():
    with pytest.raises(ConfigError, match="must be proxy or glance-download or auto, not 'rsync'"):
        config(master="transfer = rsync")


def test_import_timeout_must_be_positive():
    with pytest.raises(ConfigError, match="at least 1"):
        config(master="import_timeout = 0")


# --------------------------------------------------------------------------- the executor


def master_image(name: str, size: int = 3 * MB) -> Image:
    return Image(
        name=name,
        id=f"id-{name}",
        owner="tenant1id",
        is_public=True,
        checksum=f"md5-{name}",
        size=size,
        status="active",
        os_hash_algo="sha512",
        os_hash_value=f"sha-{name}",
    )


class ImportingBackend(MockBackend):
    """The mock with a Glance that imports server-side; ``fail`` names images whose import
    fails; every call is recorded."""

    def __init__(self, target, store, fail=()):
        super().__init__(target, store)
        self.fail, self.calls, self.uploads = set(fail), [], []

    def can_import(self, region: str) -> bool:
        return True

    def import_copy(self, region, master, is_public, properties, progress=None, **kw):
        self.calls.append((region, master.name, kw))
        if progress is not None:
            progress(0)
        if master.name in self.fail:
            raise BackendError(f"{region}: Import of {master.name} Failed. Cause: task failed")
        image = self.upload(region, master, is_public, properties, None, progress)
        self.uploads.pop()
        return image

    def upload(self, region, master, is_public, properties, source, progress=None):
        self.uploads.append((region, master.name))
        return super().upload(region, master, is_public, properties, source, progress)


def world(master: str, other: str = "", fail=(), importing_other: bool = False):
    cfg = config(master=master, other=other)
    store = MockStore(
        {
            "Valladolid": [master_image("a"), master_image("b", 2 * MB)],
            "Burgos": [],
            "other:Madrid": [],
        }
    )
    backends = make_backends(cfg, store=store)
    backends["master"] = ImportingBackend(cfg.targets["master"], store, fail)
    if importing_other:
        backends["other"] = ImportingBackend(cfg.targets["other"], store, fail)
    log = logging.getLogger("test-transfer")
    return GlanceSync(cfg, backends, log), backends


def test_glance_download_copies_server_side(caplog):
    gs, backends = world("transfer = glance-download\nimport_timeout = 90")
    with caplog.at_level(logging.INFO, "test-transfer"):
        result = gs.sync_region("Burgos")
    assert not result.failed
    assert not any("through this host" in m for m in caplog.messages)
    assert sorted((e.name, e.result, e.transfer) for e in result.images) == [
        ("a", "done", "glance-download"),
        ("b", "done", "glance-download"),
    ]
    assert backends["master"].uploads == []
    kw = backends["master"].calls[0][2]
    assert kw == {"source_region": "Valladolid", "timeout": 90}
    assert result.summary == "Burgos:   Total uploaded to region: 5 (MB), 5 (MB) server-side"
    assert "Burgos: Uploading image a (3.00 MB, glance-download)" in caplog.messages
    # the second run is a no-op
    again = gs.sync_region("Burgos")
    assert again.summary == "Burgos: Region is synchronized."
    assert [e.transfer for e in again.images] == [None, None]


def test_dry_run_says_the_path():
    gs, _ = world("transfer = glance-download")
    result = gs.sync_region("Burgos", dry_run=True)
    assert [(e.result, e.transfer) for e in result.images] == [
        ("planned", "glance-download"),
        ("planned", "glance-download"),
    ]
    assert result.summary == "Burgos: MBs pending : 5, 5 server-side"


def test_results_carry_the_path_in_the_rest_form():
    gs, _ = world("transfer = glance-download")
    body = gs.sync_region("Burgos").to_dict()
    assert body["images"][0]["transfer"] == "glance-download"
    again = gs.sync_region("Burgos").to_dict()
    assert "transfer" not in again["images"][0]


def test_glance_download_failure_fails_that_image_only_without_fallback():
    gs, backends = world("transfer = glance-download", fail={"a"})
    result = gs.sync_region("Burgos")
    assert result.failed
    failed = {e.name: e for e in result.images}["a"]
    assert (failed.result, failed.transfer) == ("failed", "glance-download")
    assert "Import of a Failed" in failed.error
    assert backends["master"].uploads == []  # nothing through this host


def test_auto_falls_back_once_to_proxy_with_a_warning(caplog):
    gs, backends = world("transfer = auto", fail={"a"})
    with caplog.at_level(logging.INFO, "test-transfer"):
        result = gs.sync_region("Burgos")
    assert not result.failed
    assert sorted((e.name, e.transfer) for e in result.images) == [
        ("a", "proxy"),
        ("b", "glance-download"),
    ]
    assert backends["master"].uploads == [("Burgos", "a")]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Burgos: Import of a Failed. Cause: task failed Copying a through this host instead."
    ]
    assert result.summary == "Burgos:   Total uploaded to region: 5 (MB), 2 (MB) server-side"


def test_auto_takes_proxy_for_another_keystone(caplog):
    gs, backends = world("", other="transfer = auto", importing_other=True)
    with caplog.at_level(logging.INFO, "test-transfer"):
        result = gs.sync_region("other:Madrid")
    assert "other:Madrid: copies go through this host (transfer = auto)" in caplog.messages
    assert not result.failed
    assert [e.transfer for e in result.images] == ["proxy", "proxy"]
    assert backends["other"].calls == []
    assert result.summary == "other:Madrid:   Total uploaded to region: 5 (MB) "


def test_auto_on_the_plain_mock_copies_through_this_host():
    cfg = config(master="transfer = auto")
    store = MockStore({"Valladolid": [master_image("a")], "Burgos": []})
    result = GlanceSync(cfg, make_backends(cfg, store=store)).sync_region("Burgos")
    assert not result.failed and result.images[0].transfer == "proxy"


def test_glance_download_on_the_plain_mock_fails_each_copy():
    cfg = config(master="transfer = glance-download")
    store = MockStore({"Valladolid": [master_image("a")], "Burgos": []})
    result = GlanceSync(cfg, make_backends(cfg, store=store)).sync_region("Burgos")
    assert result.failed and "cannot import server-side" in result.error


def test_a_cancel_during_an_import_is_not_a_fallback():
    gs, backends = world("transfer = auto")
    result = gs.sync_region("Burgos", should_cancel=lambda: True)
    assert result.failed and result.error == "cancelled"
    assert backends["master"].uploads == []


def test_cancel_reaches_the_importer_through_progress():
    """The importer's progress(0) at each poll raises Cancelled once a cancel is asked."""
    gs, backends = world("transfer = glance-download")
    asked = iter([False, True])
    result = gs.sync_region("Burgos", should_cancel=lambda: next(asked, True))
    assert result.failed and result.error == "cancelled"
    assert len(backends["master"].calls) == 1
    assert isinstance(Cancelled(), BackendError)


def test_a_region_that_imports_is_not_waited_for_by_the_shared_master_read():
    """Burgos imports, Madrid copies through this host: Madrid's read of the master is
    its own, never a broadcast that waits for Burgos (who never reads)."""
    from glancesync.batch import SyncOptions

    gs, backends = world("transfer = glance-download", other="transfer = auto")
    refs = [gs.parse("Burgos"), gs.parse("other:Madrid")]
    prepared = [
        gs.prepare(ref, gs.load_master(), gs.log, SyncOptions(dry_run=True)) for ref in refs
    ]
    assert [p.upload_order() for p in prepared] == [[], ["id-b", "id-a"]]
    results = gs.sync_regions(["Burgos", "other:Madrid"], SyncOptions(max_workers=2))
    assert [sorted({e.transfer for e in r.images}) for r in results] == [
        ["glance-download"],
        ["proxy"],
    ]
