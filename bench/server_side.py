"""Benchmark: server-side copies (``transfer = glance-download``/``auto``) against the proxy path.

Run: ``python bench/server_side.py [--sizes 64,128,256] [--wall-size 64] [--mbit 50]
[--repeat 3] [--workdir /tmp/tb-server-side] [--json FILE] [--keep] [--skip-wall]``.

The testbed (``testbed/``) is started with a third region of the master's Keystone
(``Ourense``, beside Trento and Lannion). The sync host reaches every Glance of that
Keystone through ONE emulated link (``LinkProxy``: a TCP relay per Glance, all sharing a
download and an upload token bucket), registered in the catalog as the ``admin`` image
endpoints; glancesync uses ``interface = admin``, while the Glances fetch from each
other over the ``public`` endpoints (``import_interface = public``), unthrottled, as
Glances inside one datacenter do. Keystone itself is reached directly (tokens only).

1. bytes: for each image size, one image synced to the 3 regions, ``proxy`` then
   ``glance-download``; every byte relayed by the link (both ways, API calls included)
   divided by the image size. The proxy path reads the master once and writes 3 copies:
   4.0. The goal for glance-download is <= 0.01.
2. wall time (``--mbit``, default 50 Mbit/s each way): one ``--wall-size`` MiB image to the
   3 regions with ``auto``, ``proxy``, and the bare glance-download peer (create, import,
   poll: no selection, verification or status), each from empty regions; ``--repeat``
   runs of each, interleaved, the median kept.

Not a test: pytest never collects it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]

from peers import make_session  # noqa: E402
from proxy import TokenBucket  # noqa: E402

from testbed import Testbed  # noqa: E402
from testbed.identity import KeystoneAdmin  # noqa: E402

MIB = 1024 * 1024
MASTER = "Spain2"
REGIONS = ["Trento", "Lannion", "Ourense"]
EXTRA = ("Ourense",)
READ_SIZE = 64 * 1024
PREFIX = "bench-ss-"


# ---------------------------------------------------------------- the emulated link


class LinkProxy:
    """One link between the sync host and a datacenter: a relay per Glance, one download
    and one upload bucket shared by all of them (``rate`` bytes/s each way; None: no
    limit). ``down``/``up`` count every relayed byte."""

    def __init__(self, upstream_ports: list[int], rate: float | None = None):
        self.upstream_ports, self.rate = upstream_ports, rate
        self.ports: dict[int, int] = {}
        self.down = self.up = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="link", daemon=True)

    def __enter__(self) -> LinkProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the link proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def reset(self) -> None:
        self.down = self.up = 0

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        big = 1 << 60
        self._buckets = {
            "down": TokenBucket(self.rate or big, 256 * 1024),
            "up": TokenBucket(self.rate or big, 256 * 1024),
        }
        servers = []
        for upstream in self.upstream_ports:
            server = self._loop.run_until_complete(
                asyncio.start_server(
                    lambda r, w, port=upstream: self._handle(r, w, port), "127.0.0.1", 0
                )
            )
            self.ports[upstream] = server.sockets[0].getsockname()[1]
            servers.append(server)
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            for server in servers:
                server.close()
            self._loop.close()

    async def _handle(self, reader: Any, writer: Any, upstream: int) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, "up"),
            self._pipe(up_reader, writer, "down"),
            return_exceptions=True,
        )

    async def _pipe(self, src: Any, dst: Any, way: str) -> None:
        try:
            while data := await src.read(READ_SIZE):
                if self.rate:
                    await self._buckets[way].take(len(data))
                if way == "down":
                    self.down += len(data)
                else:
                    self.up += len(data)
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):
                dst.close()


# ---------------------------------------------------------------- testbed


def start_testbed(workdir: str) -> Testbed:
    tb = Testbed(workdir)
    tb.start(extra_regions=EXTRA)
    return tb


def keystone_admin(tb: Testbed) -> KeystoneAdmin:
    ks = tb.info["keystones"]["keystone-1"]
    admin = ks["admin"]
    return KeystoneAdmin(ks["url"], admin["username"], admin["password"], admin["project_name"])


def route_through(tb: Testbed, link: LinkProxy) -> None:
    """The ``admin`` image endpoints of the master's Keystone: the link's relays."""
    admin = keystone_admin(tb)
    service = admin.service_id("image")
    _, listed = admin._call("GET", f"/endpoints?interface=admin&service_id={service}")
    for endpoint in listed["endpoints"]:
        admin._call("DELETE", f"/endpoints/{endpoint['id']}")
    for region in [MASTER, *REGIONS]:
        port = int(tb.info["regions"][region]["glance_url"].rsplit(":", 1)[1])
        admin.add_endpoint(service, region, f"http://127.0.0.1:{link.ports[port]}", "admin")


def glance_ports(tb: Testbed) -> list[int]:
    return [int(tb.info["regions"][r]["glance_url"].rsplit(":", 1)[1]) for r in [MASTER, *REGIONS]]


def admin_session(tb: Testbed) -> Any:
    """The master Keystone's admin session (bench/peers.py's session of a credential)."""
    cred = tb.info["keystones"]["keystone-1"]["admin"]
    return make_session({**cred, "auth_url": tb.info["keystones"]["keystone-1"]["url"]})


def glance(sess: Any, region: str, interface: str = "public") -> Any:
    from glanceclient import Client

    return Client("2", session=sess, region_name=region, interface=interface)


def wipe(sess: Any, regions: list[str]) -> None:
    for region in regions:
        client = glance(sess, region)
        for image in client.images.list():
            if image["name"].startswith(PREFIX):
                if image.get("protected"):
                    client.images.update(image["id"], protected=False)
                client.images.delete(image["id"])


def add_master_image(sess: Any, size_mib: int) -> dict[str, Any]:
    client = glance(sess, MASTER)
    record = client.images.create(
        name=f"{PREFIX}{size_mib}m-{os.urandom(3).hex()}",
        disk_format="raw",
        container_format="bare",
        visibility="public",
    )
    data = os.urandom(size_mib * MIB)
    client.images.upload(record["id"], io.BytesIO(data), image_size=len(data))
    return dict(client.images.get(record["id"]))


# ---------------------------------------------------------------- contenders


def config_text(tb: Testbed, transfer: str) -> str:
    ks = tb.info["keystones"]["keystone-1"]
    cred = ks["admin"]
    return (
        f"[main]\nmaster_region = {MASTER}\nimages_dir = /nonexistent\n\n"
        f"[master]\nuser = {cred['username']}\npassword = {cred['password']}\n"
        f"keystone_url = {ks['url'].removesuffix('/v3')}\ntenant = {cred['project_name']}\n"
        f"interface = admin\nimport_interface = public\ntransfer = {transfer}\n"
    )


def run_glancesync(tb: Testbed, transfer: str) -> dict[str, Any]:
    from glancesync.batch import SyncOptions
    from glancesync.config import load_config
    from glancesync.engine import GlanceSync

    log = logging.getLogger("bench-server-side")
    gs = GlanceSync(load_config(text=config_text(tb, transfer), environ={}), log=log)
    results = gs.sync_regions(REGIONS, SyncOptions(max_workers=len(REGIONS)))
    failed = [r.error for r in results if r.failed]
    if failed:
        raise RuntimeError(f"glancesync ({transfer}) failed: {failed}")
    return {r.region: sorted({e.transfer or "proxy" for e in r.images}) for r in results}


def run_bare_peer(tb: Testbed, image: dict[str, Any]) -> dict[str, Any]:
    """Glance's glance-download alone: create, import, poll; the API calls go through the
    link (``admin`` endpoints) like glancesync's."""
    from concurrent.futures import ThreadPoolExecutor

    sess = admin_session(tb)

    def one(region: str) -> None:
        client = glance(sess, region, "admin")
        new = client.images.create(
            name=image["name"], disk_format="raw", container_format="bare", visibility="public"
        )
        client.images.image_import(
            new["id"],
            method="glance-download",
            remote_region=MASTER,
            remote_image_id=image["id"],
            remote_service_interface="public",
        )
        deadline = time.monotonic() + 1800
        while True:
            record = client.images.get(new["id"])
            if record["status"] == "active":
                return
            if record.get("os_glance_failed_import") or time.monotonic() > deadline:
                raise RuntimeError(f"bare glance-download to {region} failed")
            time.sleep(0.25)

    with ThreadPoolExecutor(len(REGIONS)) as pool:
        for job in [pool.submit(one, region) for region in REGIONS]:
            job.result()
    return {region: ["glance-download"] for region in REGIONS}


def timed(link: LinkProxy, run: Any, size: int) -> dict[str, Any]:
    link.reset()
    t0 = time.monotonic()
    paths = run()
    seconds = time.monotonic() - t0
    crossed = link.down + link.up
    return {
        "seconds": round(seconds, 2),
        "bytes": crossed,
        "ratio": round(crossed / size, 4),
        "paths": paths,
    }


# ---------------------------------------------------------------- the two parts


def bytes_part(tb: Testbed, sess: Any, sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    with LinkProxy(glance_ports(tb)) as link:
        route_through(tb, link)
        for size in sizes:
            wipe(sess, [MASTER, *REGIONS])
            image = add_master_image(sess, size)
            proxy = timed(link, lambda: run_glancesync(tb, "proxy"), image["size"])
            wipe(sess, REGIONS)
            server = timed(link, lambda: run_glancesync(tb, "glance-download"), image["size"])
            rows.append({"size_mib": size, "proxy": proxy, "glance-download": server})
            print(
                f"{size:5d} MiB  proxy {proxy['ratio']:.3f}  glance-download "
                f"{server['ratio']:.5f} ({server['bytes']} bytes)",
                flush=True,
            )
    return rows


def wall_part(tb: Testbed, sess: Any, size: int, mbit: float, repeat: int) -> dict[str, Any]:
    rate = mbit * 1_000_000 / 8
    out: dict[str, Any] = {"size_mib": size, "mbit": mbit, "repeat": repeat}
    wipe(sess, [MASTER, *REGIONS])
    image = add_master_image(sess, size)
    with LinkProxy(glance_ports(tb), rate=rate) as link:
        route_through(tb, link)
        contenders = {
            "auto": lambda: run_glancesync(tb, "auto"),
            "bare glance-download": lambda: run_bare_peer(tb, image),
            "proxy": lambda: run_glancesync(tb, "proxy"),
        }
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
        for _ in range(repeat):  # interleaved, so a busy moment of the host hits them all
            for name, run in contenders.items():
                wipe(sess, REGIONS)
                runs[name].append(timed(link, run, image["size"]))
        for name, done in runs.items():
            out[name] = sorted(done, key=lambda r: r["seconds"])[len(done) // 2]  # median
            out[name]["all_seconds"] = [r["seconds"] for r in done]
            print(f"{name:22s} {out[name]['seconds']:8.2f} s  {out[name]['all_seconds']}")
    out["proxy/auto"] = round(out["proxy"]["seconds"] / out["auto"]["seconds"], 2)
    out["auto/bare"] = round(out["auto"]["seconds"] / out["bare glance-download"]["seconds"], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,128,256", help="MiB per image, comma-separated")
    parser.add_argument("--wall-size", type=int, default=64, help="MiB of the timed image")
    parser.add_argument("--mbit", type=float, default=50.0, help="the sync host's link")
    parser.add_argument("--workdir", default="/tmp/tb-server-side")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (the median)")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--skip-wall", action="store_true")
    parser.add_argument("--keep", action="store_true", help="leave the testbed running")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # relays cut at the link's end
    tb = start_testbed(args.workdir)
    try:
        sess = admin_session(tb)
        report: dict[str, Any] = {"regions": REGIONS}
        report["bytes"] = bytes_part(tb, sess, [int(s) for s in args.sizes.split(",") if s])
        if not args.skip_wall:
            report["wall"] = wall_part(tb, sess, args.wall_size, args.mbit, args.repeat)
            wall = report["wall"]
            print(f"proxy/auto = {wall['proxy/auto']}x   auto/bare = {wall['auto/bare']}x")
        wipe(sess, [MASTER, *REGIONS])
    finally:
        if not args.keep:
            tb.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
