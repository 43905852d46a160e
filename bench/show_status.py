"""Benchmark: ``--show-status`` on the mock with N master images x 3 regions.

The regions mix every status (about a third ok, the rest spread over the other eight).
Run: ``python bench/show_status.py [N ...]``. Target: 5,000 x 3 in under 2 s, and time
growing linearly with N. Prints a table; the whole CLI runs in-process, output discarded.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time

from glancesync.backends.csvfile import write_backup
from glancesync.cli import main
from glancesync.image import Image

CONFIG = """[main]
master_region = Master
[master]
credential = user,cGFzcw==,http://keystone:5000/v3,tenant
metadata_set = type
dontupdate = stalled
replace = old
rename = renamed
"""
REGIONS = ("R1", "R2", "R3")
T = "tenantid"


def master_images(n: int) -> list[Image]:
    # A private kernel: not synchronisable, so AMIs that need it are error_ami.
    images = [Image("kernel-private", "kp", "Master", T, False, "ck", 1, "active", {})]
    for i in range(n):
        props = {"type": "app"}
        if i % 12 == 10 and i >= 3:
            props["kernel_id"] = f"id{i - 3}"  # a kernel uploaded in this run: pending_ami
        elif i % 12 == 11:
            props["kernel_id"] = "kp"  # error_ami
        images.append(
            Image(f"img{i:06d}", f"id{i}", "Master", T, True, f"c{i}", 1000 + i, "active", props)
        )
    return images


def region_image(master: Image, i: int, region: str) -> Image | None:
    """One of nine situations, ok three times as often as each other one."""
    kind = i % 12
    img = master.copy(region=region, id=f"{region}-{i}")
    if kind in (0, 1, 2, 3):
        return img  # ok (or pending_ami/pending_metadata for AMI images)
    if kind == 4:
        return img.copy(checksum="stalled")  # ok_stalled_checksum
    if kind == 5:
        return img.copy(checksum="unknown")  # error_checksum
    if kind == 6:
        return img.copy(is_public=False)  # pending_metadata
    if kind == 7:
        return None  # pending_upload
    if kind == 8:
        return img.copy(checksum="old")  # pending_replace
    if kind == 9:
        return img.copy(checksum="renamed")  # pending_rename
    return img  # an AMI whose kernel is pending (kind 10) or missing (kind 11)


def build(folder: str, n: int) -> None:
    masters = master_images(n)
    write_backup(os.path.join(folder, "backup_Master.csv"), "Master", masters)
    for region in REGIONS:
        images = [region_image(m, i, region) for i, m in enumerate(masters[1:])]
        path = os.path.join(folder, f"backup_{region}.csv")
        write_backup(path, region, [img for img in images if img is not None])


def run_once(folder: str) -> tuple[float, dict[str, int]]:
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["--show-status", *REGIONS])
    elapsed = time.perf_counter() - start
    assert code == 0, code
    counts: dict[str, int] = {}
    for line in out.getvalue().splitlines():
        if line:
            status = line.split(",", 1)[0]
            counts[status] = counts.get(status, 0) + 1
    return elapsed, counts


def main_bench(sizes: list[int]) -> None:
    print(f"{'images':>8} {'regions':>7} {'seconds':>8} {'us/image/region':>16}  statuses")
    for n in sizes:
        with tempfile.TemporaryDirectory() as folder:
            build(folder, n)
            conf = os.path.join(folder, "glancesync.conf")
            with open(conf, "w") as handle:
                handle.write(CONFIG)
            os.environ["GLANCESYNC_CONFIG"] = conf
            os.environ["GLANCESYNC_USE_MOCK"] = folder
            elapsed, counts = min((run_once(folder) for _ in range(3)), key=lambda r: r[0])
        per = elapsed / (n * len(REGIONS)) * 1e6
        mix = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        print(f"{n:>8} {len(REGIONS):>7} {elapsed:>8.3f} {per:>16.1f}  {mix}")


if __name__ == "__main__":
    main_bench([int(a) for a in sys.argv[1:]] or [1000, 5000, 20000])
