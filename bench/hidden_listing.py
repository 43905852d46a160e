"""Benchmark: what the second (``os_hidden=true``) listing costs on a 10,000-image region.

glancesync lists a region twice (reference 2.4): Glance's default listing omits hidden images, so
``GlanceBackend.list_images`` asks again with ``os_hidden=true``. This script puts N image
records (no data: ``queued`` images, H of them hidden) into one testbed Glance, then times,
in the same run and interleaved, the two listings ``list_images`` makes (the default one,
pages of 1000, and the hidden pass) and prints the cost of both against the first alone.

The records are written straight into that Glance's sqlite database (the testbed keeps
one per Glance server): through the API, 10,000 creates take minutes on a small machine,
and only the listing is measured. They are removed at the end.

Run: ``python bench/hidden_listing.py [--images 10000] [--hidden 100] [--repeat 3]
[--region Lannion] [--workdir /tmp/tb-bench] [--keep]``. It starts a testbed in
``--workdir`` (or reuses the one running there) and stops one it started unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime
import signal
import sqlite3
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]  # the testbed package lives at the repository root

from glancesync.backends.glance import PAGE_SIZE, GlanceBackend  # noqa: E402
from glancesync.config import load_config  # noqa: E402
from testbed import Testbed  # noqa: E402

MARK = "bench-hidden"  # property on every record this script writes, to delete them after


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--hidden", type=int, default=100, help="how many of them are hidden")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--region", default="Lannion")
    parser.add_argument("--workdir", default="/tmp/tb-bench")
    parser.add_argument("--keep", action="store_true", help="leave a started testbed running")
    return parser.parse_args(argv)


def glance_db(info: dict[str, Any], region: str) -> sqlite3.Connection:
    return sqlite3.connect(Path(info["workdir"]) / f"glance-{region}" / "glance.db")


def insert_records(info: dict[str, Any], region: str, count: int, hidden: int) -> None:
    """``count`` public queued images of the admin project, the last ``hidden`` hidden."""
    owner = info["keystones"]["keystone-1"]["admin_project_id"]
    start = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    images, props = [], []
    for n in range(count):
        # SQLAlchemy's own format, one millisecond apart: Glance pages with a marker on
        # created_at, and other formats (or equal times) make its pages repeat forever.
        created = (start + datetime.timedelta(milliseconds=n)).strftime("%Y-%m-%d %H:%M:%S.%f")
        image_id = str(uuid.uuid4())
        images.append((image_id, f"bench-{n:05d}", created, owner, int(n >= count - hidden)))
        props.append((image_id, MARK, "1", created))
    with glance_db(info, region) as db:
        db.executemany(
            "INSERT INTO images (id, name, status, created_at, deleted, disk_format,"
            " container_format, owner, min_disk, min_ram, protected, visibility, os_hidden)"
            " VALUES (?, ?, 'queued', ?, 0, 'raw', 'bare', ?, 0, 0, 0, 'public', ?)",
            images,
        )
        db.executemany(
            "INSERT INTO image_properties (image_id, name, value, created_at, deleted)"
            " VALUES (?, ?, ?, ?, 0)",
            props,
        )


def delete_records(info: dict[str, Any], region: str) -> None:
    with glance_db(info, region) as db:
        ids = "SELECT image_id FROM image_properties WHERE name = ?"
        db.execute(f"DELETE FROM images WHERE id IN ({ids})", (MARK,))
        db.execute("DELETE FROM image_properties WHERE name = ?", (MARK,))


def backend(info: dict[str, Any]) -> GlanceBackend:
    ks = info["keystones"]["keystone-1"]
    text = (
        f"[main]\nmaster_region = {info['master_region']}\n[master]\n"
        f"user = {ks['admin']['username']}\npassword = {ks['admin']['password']}\n"
        f"keystone_url = {ks['url']}\ntenant = {ks['admin']['project_name']}\n"
        "list_images_timeout = 120\n"
    )
    config = load_config(text=text, environ={})
    return GlanceBackend(config.targets["master"], config)


def timed(call) -> tuple[float, int]:
    started = time.perf_counter()
    count = call()
    return time.perf_counter() - started, count


def measure(b: GlanceBackend, region: str, repeat: int) -> dict[str, list[float]]:
    """Per run, the two listings ``list_images`` makes, each timed on its own."""
    client = b._client(region, "list")
    passes = {
        "default listing": {},
        "hidden pass (os_hidden=true)": {"filters": {"os_hidden": "true"}},
    }
    runs: dict[str, list[float]] = {name: [] for name in passes}
    for n in range(repeat):
        for name, kwargs in passes.items():
            seconds, count = timed(
                lambda kw=kwargs: sum(1 for _ in client.images.list(page_size=PAGE_SIZE, **kw))
            )
            runs[name].append(seconds)
            print(f"run {n + 1}: {name}: {count} images in {seconds:.2f} s", flush=True)
    return runs


def report(runs: dict[str, list[float]], images: int, hidden: int) -> None:
    default, extra = (statistics.median(seconds) for seconds in runs.values())
    print(f"\n{images} images ({hidden} hidden), pages of {PAGE_SIZE}, medians:\n")
    print("| listing | median s | min s |")
    print("|---|---|---|")
    for name, seconds in runs.items():
        print(f"| {name} | {statistics.median(seconds):.2f} | {min(seconds):.2f} |")
    both = default + extra
    print(f"| list_images (both) | {both:.2f} | |")
    print(f"\nratio list_images / default listing alone: {both / default:.3f}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the records are removed
    tb = Testbed(args.workdir)
    started = not tb.running()
    info = tb.start()
    try:
        delete_records(info, args.region)
        insert_records(info, args.region, args.images, args.hidden)
        print(f"{args.images} records in {args.region}; warming up", flush=True)
        b = backend(info)
        next(iter(b._client(args.region, "list").images.list(page_size=1)))  # warm up
        report(measure(b, args.region, args.repeat), args.images, args.hidden)
    finally:
        delete_records(info, args.region)
        if started and not args.keep:
            tb.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
