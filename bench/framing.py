"""How the framing of an image-data PUT changes what the target Glance spends taking it in.

Run: ``python bench/framing.py [--size 200] [--repeat 3] [--workdir /tmp/tb-perf]``.

The same bytes (random, held in memory, so the master and the client's hashing are out of
the picture) are PUT to Trento's ``/v2/images/<id>/file`` with a ``Content-Length`` body
sent in 1 MiB pieces and with chunked encoding in pieces of 32 KiB to 1 MiB. Reported:
the wall time of the PUT and the CPU seconds of the Trento Glance worker during it (read
from ``/proc``). This is the measurement behind ``glance_http.SEND_PIECE``.

Not a test: pytest never collects it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]

from perf import Bed  # noqa: E402
from transfer import MIB, ensure_testbed  # noqa: E402

REGION = "Trento"
KINDS = {  # name -> (piece bytes, sized)
    "length-1M": (MIB, True),
    "chunked-32K": (32 * 1024, False),
    "chunked-64K": (64 * 1024, False),
    "chunked-128K": (128 * 1024, False),
    "chunked-256K": (256 * 1024, False),
    "chunked-1M": (MIB, False),
}


def worker_cpu(server: str) -> float:
    """User + system CPU seconds of the gunicorn worker of ``server`` (e.g. glance-Trento)."""
    tag = f"worker [{server}]".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if tag not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    raise SystemExit(f"no gunicorn worker for {server}")


class Sized:
    """A body of known length: requests sends a Content-Length and iterates it."""

    def __init__(self, pieces: Iterator[memoryview], size: int):
        self.pieces, self.size = pieces, size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[memoryview]:
        return self.pieces


def put_once(bed: Bed, url: str, data: memoryview, kind: str) -> tuple[float, float]:
    import requests

    piece, sized = KINDS[kind]
    client = bed.targets[REGION]
    image = client.images.create(name="bench-framing", disk_format="raw", container_format="bare")
    pieces = (data[i : i + piece] for i in range(0, len(data), piece))
    body = Sized(pieces, len(data)) if sized else pieces
    headers = {"X-Auth-Token": bed.sess.get_token(), "Content-Type": "application/octet-stream"}
    cpu0, t0 = worker_cpu(f"glance-{REGION}"), time.perf_counter()
    response = requests.put(f"{url}/v2/images/{image['id']}/file", data=body, headers=headers)
    wall, cpu = time.perf_counter() - t0, worker_cpu(f"glance-{REGION}") - cpu0
    client.images.delete(image["id"])
    if response.status_code != 204:
        raise SystemExit(f"{kind}: HTTP {response.status_code} {response.text[:200]}")
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=200, help="MiB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/tb-perf")
    args = parser.parse_args()
    tb, started = ensure_testbed(args.workdir)
    try:
        bed = Bed(tb.info)
        url = bed.sess.get_endpoint(service_type="image", interface="public", region_name=REGION)
        data = memoryview(os.urandom(args.size * MIB))
        results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
        for _ in range(args.repeat):  # interleaved, so load drifts hit every kind alike
            for kind in KINDS:
                results[kind].append(put_once(bed, url.rstrip("/"), data, kind))
    finally:
        if started:
            tb.stop()
    print(f"| body ({args.size} MiB, median of {args.repeat}) | PUT wall s | Glance CPU s |")
    print("|---|---|---|")
    for kind, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"| {kind} | {wall:.2f} | {cpu:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
