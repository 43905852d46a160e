"""Benchmark: a qcow2 master converted to raw on its way to a region (issue 23 item 3).

Run: ``python bench/convert.py [--virtual-mib 1024] [--data-mib 256] [--region Trento]
[--workdir /tmp/tb-bench] [--keep]``.

A qcow2 of ``--virtual-mib`` virtual size (its first ``--data-mib`` random, the rest
zeros) is made with qemu-img and stored in the testbed's master region. Then, each in a
child process, from an empty target region:
* ``glancesync``: a sync of the region with ``convert_to = raw`` (download into the spool,
  checks, ``qemu-img convert``, hashing, upload, verification);
* ``bare``: ``qemu-img convert`` of a local copy of the qcow2, then a plain glanceclient
  upload of the raw file (no download, no checks, no verification).
Per run: wall time and the child's peak RSS. Not a test: pytest never collects it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(REPO), str(BENCH_DIR)]

from peers import glance, make_session  # noqa: E402
from transfer import MASTER, admin_cred, ensure_testbed, glancesync_config  # noqa: E402

MIB = 1 << 20

GLANCESYNC = """
import logging, sys
from glancesync.config import load_config
from glancesync.engine import GlanceSync
logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(message)s")
gs = GlanceSync(load_config(text=open(sys.argv[1]).read(), environ={}))
sys.exit(1 if gs.sync_region(sys.argv[2]).failed else 0)
"""

BARE = """
import json, subprocess, sys
sys.path[:0] = [sys.argv[1]]
from peers import glance, make_session
spec = json.load(open(sys.argv[2]))
subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", spec["qcow2"], spec["raw"]],
               check=True)
client = glance(make_session(spec["cred"]), spec["region"])
record = client.images.create(name=spec["name"], disk_format="raw", container_format="bare")
with open(spec["raw"], "rb") as data:
    client.images.upload(record["id"], data, image_size=spec["size"])
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--virtual-mib", type=int, default=1024)
    parser.add_argument("--data-mib", type=int, default=256)
    parser.add_argument("--region", default="Trento")
    parser.add_argument("--workdir", default="/tmp/tb-bench", help="testbed workdir")
    parser.add_argument("--keep", action="store_true", help="leave the testbed running")
    return parser.parse_args(argv)


def make_qcow2(folder: Path, virtual_mib: int, data_mib: int) -> Path:
    raw = folder / "source.raw"
    with open(raw, "wb") as handle:
        for _ in range(data_mib):
            handle.write(os.urandom(MIB))
        handle.truncate(virtual_mib * MIB)
    qcow2 = folder / "source.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2], check=True)
    raw.unlink()
    return qcow2


def timed_child(args: list[str]) -> dict[str, Any]:
    """Wall time and peak RSS (MiB) of one child process."""
    started = time.monotonic()
    process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"child {args[:3]} failed with status {status}")
    return {"wall_s": round(time.monotonic() - started, 2), "peak_rss_mib": usage.ru_maxrss // 1024}


def check_copy(client: Any, name: str, size: int) -> None:
    """The run must have made the raw copy, or its time means nothing."""
    copies = [i for i in client.images.list() if i["name"] == name]
    if len(copies) != 1 or copies[0]["disk_format"] != "raw" or copies[0]["size"] != size:
        raise SystemExit(f"glancesync made no raw copy of {name}: {copies}")


def wipe(client: Any, prefix: str) -> None:
    for image in list(client.images.list()):
        if image["name"].startswith(prefix):
            client.images.delete(image["id"])


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    tb, started = ensure_testbed(args.workdir)
    info = tb.info
    cred = admin_cred(info, MASTER)
    session = make_session(cred)
    master, region = glance(session, MASTER), glance(session, args.region)
    prefix = f"bench-conv-{uuid.uuid4().hex[:6]}"
    try:
        with tempfile.TemporaryDirectory(prefix="gs-bench-convert-") as tmp:
            folder = Path(tmp)
            qcow2 = make_qcow2(folder, args.virtual_mib, args.data_mib)
            record = master.images.create(
                name=prefix, disk_format="qcow2", container_format="bare", visibility="public"
            )
            with open(qcow2, "rb") as data:
                master.images.upload(record["id"], data, image_size=qcow2.stat().st_size)
            (folder / "spool").mkdir()
            config = glancesync_config(info, [args.region], str(folder / "no-local"))
            config = config.replace("[master]\n", "[master]\nconvert_to = raw\n")
            config = config.replace("[main]\n", f"[main]\nspool_dir = {folder / 'spool'}\n")
            (folder / "gs.ini").write_text(config)
            script = [sys.executable, "-c", GLANCESYNC, str(folder / "gs.ini"), args.region]
            results = {"glancesync": timed_child(script)}
            check_copy(region, prefix, args.virtual_mib * MIB)
            wipe(region, prefix)
            spec = {
                "cred": cred,
                "region": args.region,
                "name": f"{prefix}-bare",
                "qcow2": str(qcow2),
                "raw": str(folder / "bare.raw"),
                "size": args.virtual_mib * MIB,
            }
            (folder / "spec.json").write_text(json.dumps(spec))
            bare = [sys.executable, "-c", BARE, str(BENCH_DIR), str(folder / "spec.json")]
            results["bare"] = timed_child(bare)
    finally:
        wipe(region, prefix)
        wipe(master, prefix)
        if started and not args.keep:
            tb.stop()
    ratio = results["glancesync"]["wall_s"] / max(results["bare"]["wall_s"], 0.01)
    results["ratio"] = round(ratio, 2)
    results["virtual_mib"], results["data_mib"] = args.virtual_mib, args.data_mib
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
