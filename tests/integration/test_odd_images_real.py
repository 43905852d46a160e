"""Odd images of real clouds on the testbed's Glance servers (issue 11 item 5; reference
5.2, 1.4, 2.4).

Some states cannot be made through the Glance API (a master image without checksum, as
Nova RBD snapshots leave; a property an older tool wrote without schema checks): those
are written straight into that Glance's sqlite database, as the issue asks.
"""

from __future__ import annotations

import datetime
import sqlite3
import time
from pathlib import Path

import pytest
from fixtures_glance import MASTER, region_images, unique

pytestmark = pytest.mark.integration


def glance_db(tb_info, region: str) -> sqlite3.Connection:
    path = Path(tb_info["workdir"]) / f"glance-{region}" / "glance.db"
    assert path.is_file(), path
    return sqlite3.connect(path)


def drop_hashes(tb_info, region: str, image_id: str) -> None:
    """What an RBD snapshot looks like: an active image without checksum nor multihash."""
    with glance_db(tb_info, region) as db:
        db.execute(
            "UPDATE images SET checksum=NULL, os_hash_algo=NULL, os_hash_value=NULL WHERE id=?",
            (image_id,),
        )


def write_property(tb_info, region: str, image_id: str, name: str, value: str) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    with glance_db(tb_info, region) as db:
        db.execute(
            "INSERT INTO image_properties (image_id, name, value, created_at, deleted)"
            " VALUES (?, ?, ?, ?, 0)",
            (image_id, name, value, now),
        )


def sync(engine, master: str = "", region: str = "Trento"):
    gs, log = engine(master=master)
    result = gs.sync_region(region)
    return gs, log, result


def statuses(gs, region: str = "Trento") -> dict[str, str]:
    return {s.name: s.status for s in gs.region_statuses(region).images}


@pytest.mark.usefixtures("clean_glance")
def test_master_without_checksum_is_copied_once(add_image, glance, engine, tb_info):
    made = add_image(unique("rbd"))
    drop_hashes(tb_info, MASTER, made.id)
    assert not glance(MASTER).images.get(made.id).get("checksum")
    gs, _, result = sync(engine, "replace = any\n")
    assert not result.failed
    copy = region_images(glance("Trento"))[made.name]
    assert copy["glancesync_source_id"] == made.id
    assert copy["glancesync_source_hash"] == made.md5 == copy["checksum"]
    assert statuses(gs) == {made.name: "ok"}
    sync(engine, "replace = any\n")
    assert [i["id"] for i in glance("Trento").images.list()] == [copy["id"]]


@pytest.mark.usefixtures("clean_glance")
def test_hidden_master_is_synchronised_and_its_hidden_copy_is_not_uploaded_again(
    add_image, glance, engine
):
    made = add_image(unique("hidden"), os_hidden=True)
    gs, _, result = sync(engine)
    assert not result.failed
    hidden = list(glance("Trento").images.list(filters={"os_hidden": "true"}))
    assert [(i["name"], i["os_hidden"]) for i in hidden] == [(made.name, True)]
    assert statuses(gs) == {made.name: "ok"}
    sync(engine)
    assert len(list(glance("Trento").images.list(filters={"os_hidden": "true"}))) == 1
    assert list(glance("Trento").images.list()) == []


@pytest.mark.usefixtures("clean_glance")
def test_hidden_follows_the_master(add_image, glance, engine):
    made = add_image(unique("unhide"))
    sync(engine)
    glance(MASTER).images.update(made.id, os_hidden=True, min_ram=256, protected=True)
    try:
        gs, _ = engine()
        assert statuses(gs) == {made.name: "pending_metadata"}
        assert not gs.sync_region("Trento").failed
        copy = region_images(glance("Trento"))  # the default listing no longer shows it
        assert made.name not in copy
        record = next(iter(glance("Trento").images.list(filters={"os_hidden": "true"})))
        assert (record["os_hidden"], record["min_ram"], record["protected"]) == (True, 256, True)
        assert statuses(gs) == {made.name: "ok"}
    finally:
        glance(MASTER).images.update(made.id, protected=False)


@pytest.mark.usefixtures("clean_glance")
def test_protected_region_image_is_not_replaced(add_image, glance, engine):
    made = add_image(unique("prot"))
    old = add_image(made.name, region="Trento", protected=True)
    gs, log, result = sync(engine, "replace = any\n")
    assert not result.failed
    assert [i["id"] for i in glance("Trento").images.list()] == [old.id]
    warning = f"WARNING:Trento: image {made.name} is protected and cannot be replaced; "
    assert warning + "nothing uploaded" in log.lines
    assert statuses(gs) == {made.name: "error_checksum"}


@pytest.mark.usefixtures("clean_glance")
def test_protected_region_image_may_be_renamed(add_image, glance, engine):
    made = add_image(unique("protren"))
    add_image(made.name, region="Trento", protected=True)
    _, _, result = sync(engine, "rename = any\n")
    assert not result.failed
    names = region_images(glance("Trento"))
    assert set(names) == {made.name, f"{made.name}.old"}
    assert names[made.name]["checksum"] == made.md5


@pytest.mark.usefixtures("clean_glance")
def test_metadata_update_of_an_image_that_fails_the_schema(add_image, glance, engine, tb_info):
    made = add_image(unique("oldtool"), type="base")
    sync(engine)
    copy = region_images(glance("Trento"))[made.name]
    write_property(tb_info, "Trento", copy["id"], "kernel_id", "vmlinuz-2.6")
    write_property(tb_info, "Trento", copy["id"], "ramdisk_id", "not a uuid either")
    glance(MASTER).images.update(made.id, type="app")
    # glanceclient's own update refuses this image before sending anything.
    with pytest.raises(Exception, match="kernel_id|valid"):
        glance("Trento").images.update(copy["id"], type="x")
    gs, log, result = sync(engine, "metadata_set = type\n")
    assert not result.failed, log.lines
    record = dict(glance("Trento").images.get(copy["id"]))
    assert record["type"] == "app"
    assert "kernel_id" not in record and "ramdisk_id" not in record  # the master has none
    assert record["glancesync_source_id"] == made.id  # reserved: kept by the update
    assert statuses(gs) == {made.name: "ok"}


@pytest.mark.usefixtures("clean_glance")
def test_listing_reads_hidden_images_on_every_page(make_config, add_image):
    from glancesync.backends.glance import GlanceBackend

    made = [add_image(unique("vis")) for _ in range(3)]
    made += [add_image(unique("hid"), os_hidden=True) for _ in range(3)]
    config = make_config()
    images = GlanceBackend(config.targets["master"], config, page_size=2).list_images(MASTER)
    assert sorted(i.id for i in images) == sorted(m.id for m in made)
    assert sum(i.os_hidden for i in images) == 3


class SlowImagesProxy:
    """A loopback HTTP proxy in front of one Glance that delays every image listing
    request (each page) by ``delay`` seconds."""

    def __init__(self, upstream: str, delay: float) -> None:
        import http.server
        import threading
        import urllib.request

        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
                if self.path.startswith("/v2/images"):
                    time.sleep(delay)
                    proxy.requests.append(self.path)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                request = urllib.request.Request(upstream + self.path, headers=headers)
                with urllib.request.urlopen(request, timeout=30) as answer:
                    body = answer.read()
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.headers["Content-Type"])
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.requests: list[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.usefixtures("clean_glance")
def test_list_images_timeout_limits_each_page_not_the_whole_listing(
    make_config, add_image, tb_info
):
    from glanceclient import Client

    from glancesync.backends.glance import GlanceBackend

    made = [add_image(unique("slow"), region="Trento") for _ in range(3)]
    config = make_config(master="list_images_timeout = 2\n")
    b = GlanceBackend(config.targets["master"], config, page_size=1)
    proxy = SlowImagesProxy(tb_info["regions"]["Trento"]["glance_url"], delay=0.8)
    try:
        client = Client("2", endpoint=proxy.url, session=b._session("list"))
        b._client = lambda region, kind="data": client  # every request through the proxy
        started = time.monotonic()
        images = b.list_images("Trento")
        elapsed = time.monotonic() - started
    finally:
        proxy.close()
    # 3 pages + an empty last page + the hidden pass, 0.8 s each: more than the 2 s limit.
    assert sorted(i.id for i in images) == sorted(m.id for m in made)
    assert elapsed > 2 and len(proxy.requests) >= 4
    assert all("limit=1" in path for path in proxy.requests)
