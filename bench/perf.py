"""The four figures of issue 7 (item 6), each a ratio against the peers measured in the same run.

Run: ``python bench/perf.py [--repeat 3] [--json bench/perf.json] [--workdir /tmp/tb-perf]
[--only single,three,wan,rss] [--keep]``, then ``python bench/plot.py bench/perf.json
docs/performance.png`` (needs matplotlib: ``pip install matplotlib``, bench only).

Scenarios (every peer in its own child process, ``bench/peers.py``; runs interleaved,
medians reported):

``single``  1 image of 200 MB and of 1 GB to Trento: ``gs-seq`` (the command line
            ``glancesync Trento``) against ``loop-seq`` (plain python-glanceclient loop) and
            ``import`` (Glance's ``glance-download``).
``three``   200 MB to Trento, Lannion and other:Madrid (a second Keystone), master
            unthrottled: ``gs-multi`` (``sync_regions``, one read of the master) against
            ``loop-seq`` and ``loop-par`` (one thread per region); ``gs-seq`` to Trento
            alone for the 1-region time.
``wan``     the same, with the master's egress limited to 400 Mbit/s by ONE token bucket
            shared by all connections (``bench/proxy.py``, 127.0.0.1): the catalog's
            Spain2 image endpoint points at the proxy for the run (restored afterwards).
            Master bytes = what the proxy relayed from the master, and what the master's
            gunicorn access log says it served.
``rss``     ``gs-multi`` to the three regions with 100 MB and 1 GB images: peak RSS of
            the sync process and client CPU seconds per GB, beside ``loop-par``.

Not a test: pytest never collects it.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]

from peers import glance, make_session  # noqa: E402
from proxy import ThrottledProxy  # noqa: E402
from transfer import (  # noqa: E402
    MASTER,
    MIB,
    MasterLog,
    admin_cred,
    create_master_images,
    delete_named,
    ensure_testbed,
    is_copy,
    machine,
    run_peer,
)

THREE = ["Trento", "Lannion", "other:Madrid"]
WAN_MBIT = 400


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", default=str(BENCH_DIR / "perf.json"))
    parser.add_argument("--workdir", default="/tmp/tb-perf")
    parser.add_argument("--only", default="single,three,wan,rss")
    parser.add_argument("--size-small", type=int, default=200, help="MiB")
    parser.add_argument("--size-big", type=int, default=1024, help="MiB")
    parser.add_argument("--size-rss-small", type=int, default=100, help="MiB")
    parser.add_argument("--wan-mbit", type=float, default=WAN_MBIT)
    parser.add_argument("--keep", action="store_true", help="leave the testbed running")
    parser.add_argument("--report", metavar="JSON", help="only print the tables of a JSON")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- testbed access


class Bed:
    """Clients of the master and of every target region (Madrid through keystone-2)."""

    def __init__(self, info: dict[str, Any]):
        self.info = info
        self.master_cred = admin_cred(info, MASTER)
        self.other_cred = admin_cred(info, "Madrid")
        self.sess = make_session(self.master_cred)
        other = make_session(self.other_cred)
        self.master = glance(self.sess, MASTER)
        self.targets = {
            "Trento": glance(self.sess, "Trento"),
            "Lannion": glance(self.sess, "Lannion"),
            "other:Madrid": glance(other, "Madrid"),
        }
        self.log = MasterLog(info["regions"][MASTER]["log"])

    def clean(self) -> None:
        for client in (self.master, *self.targets.values()):
            delete_named(client)

    def clean_targets(self) -> None:
        for client in self.targets.values():
            delete_named(client)

    def verify(self, regions: list[str], images: list[dict[str, Any]]) -> str:
        problems = []
        for region in regions:
            records = [i for i in self.targets[region].images.list()]
            for image in images:
                copies = [r for r in records if r["name"] == image["name"]]
                good = [c for c in copies if is_copy(c, image["hash"])]
                if len(copies) != 1 or len(good) != 1:
                    problems.append(f"{region}:{image['name']} x{len(copies)} ok{len(good)}")
        return "ok" if not problems else "; ".join(problems)


def credential_line(cred: dict[str, str]) -> str:
    password = base64.b64encode(cred["password"].encode()).decode()
    return f"credential = {cred['username']},{password},{cred['auth_url']},{cred['project_name']}\n"


def gs_config(bed: Bed, regions: list[str], rundir: Path) -> str:
    return (
        f"[main]\nmaster_region = {MASTER}\nmax_children = {len(regions)}\n"
        f"images_dir = {rundir / 'no-local-images'}\n\n"
        f"[master]\n{credential_line(bed.master_cred)}metadata_set =\n\n"
        f"[other]\n{credential_line(bed.other_cred)}metadata_set =\n"
    )


def spec_for(bed: Bed, regions: list[str], images: list[dict[str, Any]], rundir: Path) -> dict:
    return {
        "cred": bed.master_cred,
        "target_creds": {r: bed.other_cred for r in regions if r.startswith("other:")},
        "master_region": MASTER,
        "regions": regions,
        "images": images,
        "rundir": str(rundir),
        "gs_config": gs_config(bed, regions, rundir),
        "gs_config_file": "",
    }


# ---------------------------------------------------------------- WAN emulation


@contextmanager
def master_behind_proxy(bed: Bed, mbit: float) -> Iterator[ThrottledProxy]:
    """The catalog's Spain2 image endpoint(s) pointed at a throttling proxy; restored after."""
    with region_behind_proxy(bed.sess, bed.info, MASTER, mbit) as proxy:
        yield proxy


@contextmanager
def region_behind_proxy(
    sess: Any, info: dict, region: str, mbit: float, **options: Any
) -> Iterator[ThrottledProxy]:
    """A region's catalog image endpoint(s) (Keystone session ``sess``) pointed at a proxy
    throttled to ``mbit``; restored after. ``options`` go to the proxy."""
    from keystoneclient.v3 import client as ksclient

    ks = ksclient.Client(session=sess)
    service = next(s for s in ks.services.list() if s.type == "image")
    endpoints = [e for e in ks.endpoints.list(service=service.id) if e.region == region]
    upstream = info["regions"][region]["glance_url"]
    port = int(upstream.rsplit(":", 1)[1].split("/")[0])
    proxy = ThrottledProxy("127.0.0.1", port, rate_bytes=mbit * 1e6 / 8, **options).start()
    saved = {e.id: e.url for e in endpoints}
    try:
        for endpoint in endpoints:
            ks.endpoints.update(endpoint, url=endpoint.url.replace(f":{port}", f":{proxy.port}"))
        yield proxy
    finally:
        for endpoint_id, url in saved.items():
            ks.endpoints.update(endpoint_id, url=url)
        proxy.stop()


# ---------------------------------------------------------------- measuring


def one_run(
    bed: Bed,
    peer: str,
    spec: dict[str, Any],
    rundir: Path,
    k: int,
    label: str,
    proxy: ThrottledProxy | None = None,
) -> dict[str, Any]:
    since = bed.log.mark()
    proxied = proxy.served if proxy else 0
    result = run_peer(peer, spec, rundir, k)
    time.sleep(0.3)  # gunicorn writes its access line once the body is sent
    result["label"] = label
    result["regions"] = spec["regions"]
    result["image_bytes"] = sum(i["size"] for i in spec["images"])
    result["master"] = bed.log.served(since)
    result["proxy_served"] = (proxy.served - proxied) if proxy else None
    result["check"] = (
        bed.verify(spec["regions"], spec["images"]) if not result.get("error") else "-"
    )
    bed.clean_targets()
    print(
        f"  {label:<22} {peer:<9} run {k}: {result.get('wall_s', 0):6.2f} s  "
        f"cpu {result.get('cpu_s', 0):5.2f}  rss {result.get('rss_peak_kib', 0) / 1024:4.0f} MB  "
        f"master {result['master']['data_bytes'] / MIB:6.0f} MB  "
        f"{result.get('error') or result['check']}",
        file=sys.stderr,
        flush=True,
    )
    return result


def scenario(
    bed: Bed,
    runs: list[dict[str, Any]],
    rundir: Path,
    repeat: int,
    size_mib: int,
    jobs: list[tuple[str, str, list[str]]],
    proxy: ThrottledProxy | None = None,
) -> None:
    """``jobs``: (label, peer, regions); all of them K times, interleaved, one image."""
    images = create_master_images(bed.master, 1, size_mib)
    try:
        for k in range(repeat):
            for label, peer, regions in jobs:
                spec = spec_for(bed, regions, images, rundir)
                runs.append(one_run(bed, peer, spec, rundir, k, label, proxy))
    finally:
        bed.clean()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.report:  # re-print the tables of an earlier run
        rows = json.loads(Path(args.report).read_text())["rows"]
        print(report(rows) + "\n\n" + figures(rows))
        return 0
    only = set(args.only.split(","))
    tb, started = ensure_testbed(args.workdir)
    runs: list[dict[str, Any]] = []
    try:
        bed = Bed(tb.info)
        if not bed.log.available(bed.master):
            raise SystemExit("the master Glance has no access log: use a fresh --workdir")
        bed.clean()
        rundir = Path(tb.workdir) / "perf" / time.strftime("%Y%m%d-%H%M%S")
        rundir.mkdir(parents=True)
        k = args.repeat
        one = ["Trento"]
        if "single" in only:
            for size in (args.size_small, args.size_big):
                jobs = [(f"single-{size}", p, one) for p in ("loop-seq", "import", "gs-seq")]
                scenario(bed, runs, rundir, k, size, jobs)
        if "three" in only:
            jobs = [
                ("three-1region", "gs-seq", one),
                ("three", "loop-seq", THREE),
                ("three", "loop-par", THREE),
                ("three", "gs-multi", THREE),
            ]
            scenario(bed, runs, rundir, k, args.size_small, jobs)
        if "wan" in only:
            with master_behind_proxy(bed, args.wan_mbit) as proxy:
                jobs = [
                    ("wan-1region", "gs-seq", one),
                    ("wan-1region", "loop-seq", one),
                    ("wan", "loop-seq", THREE),
                    ("wan", "loop-par", THREE),
                    ("wan", "gs-multi", THREE),
                ]
                scenario(bed, runs, rundir, k, args.size_small, jobs, proxy)
        if "rss" in only:
            for size in (args.size_rss_small, args.size_big):
                jobs = [(f"rss-{size}", p, THREE) for p in ("loop-par", "gs-multi")]
                scenario(bed, runs, rundir, max(2, k - 1), size, jobs)
    finally:
        if started and not args.keep:
            tb.stop()
    payload = {"args": vars(args), "machine": machine(), "runs": runs, "rows": summarise(runs)}
    Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    print(report(payload["rows"]))
    print()
    print(figures(payload["rows"]))
    return 0


# ---------------------------------------------------------------- summary


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scenario, peer): medians of the good runs."""
    rows: list[dict[str, Any]] = []
    keys = list(dict.fromkeys((r["label"], r["peer"]) for r in runs))
    for label, peer in keys:
        mine = [r for r in runs if (r["label"], r["peer"]) == (label, peer)]
        good = [r for r in mine if not r.get("error") and r.get("check") == "ok"]
        row: dict[str, Any] = {"label": label, "peer": peer, "ok": f"{len(good)}/{len(mine)}"}
        if not good:
            row["error"] = mine[0].get("error") or mine[0].get("check")
            rows.append(row)
            continue
        size = good[0]["image_bytes"]
        regions = len(good[0]["regions"])
        wall = statistics.median(r["wall_s"] for r in good)
        row.update(
            regions=regions,
            image_mib=size / MIB,
            wall_s=wall,
            walls=[round(r["wall_s"], 2) for r in good],
            mib_s=size * regions / MIB / wall,
            cpu_s=statistics.median(r["cpu_s"] for r in good),
            cpu_s_per_gb=statistics.median(r["cpu_s"] for r in good) / (size * regions / 2**30),
            rss_peak_mib=max(r["rss_peak_kib"] for r in good) / 1024,
            master_reads=statistics.median(r["master"]["data_bytes"] for r in good) / size,
        )
        if good[0].get("proxy_served") is not None:
            row["proxy_reads"] = statistics.median(r["proxy_served"] for r in good) / size
        rows.append(row)
    return rows


def figures(rows: list[dict[str, Any]]) -> str:
    """The four figures of issue 7 as ratios (markdown), from the medians."""
    by = {(r["label"], r["peer"]): r for r in rows if "wall_s" in r}

    def get(label: str, peer: str, key: str = "wall_s") -> float | None:
        row = by.get((label, peer))
        return row.get(key) if row else None

    def ratio(a: float | None, b: float | None, fmt: str = "{:.2f}") -> str:
        return fmt.format(a / b) if a is not None and b else "n/a"

    lines = ["| figure | glancesync | peers | ratio | target |", "|---|---|---|---|---|"]
    for size in sorted({int(r["image_mib"]) for r in rows if r["label"].startswith("single")}):
        label = f"single-{size}"
        gs, loop, imp = (get(label, p, "mib_s") for p in ("gs-seq", "loop-seq", "import"))
        fastest = max((v for v in (loop, imp) if v), default=None)
        lines.append(
            f"| 1 region, {size} MB: throughput MB/s | {gs or 0:.0f} | loop {loop or 0:.0f}, "
            f"glance-download {imp or 0:.0f} | x fastest peer {ratio(gs, fastest)}, "
            f"x loop {ratio(gs, loop)} | >= 1.0, >= 1.1 |"
        )
    one, three = get("wan-1region", "gs-seq"), get("wan", "gs-multi")
    seq, par = get("wan", "loop-seq"), get("wan", "loop-par")
    reads = by.get(("wan", "gs-multi"), {}).get("proxy_reads")
    peer_reads = by.get(("wan", "loop-par"), {}).get("proxy_reads")
    if one and three:
        lines.append(
            f"| 3 regions, master at 400 Mbit/s, 200 MB: wall s | 1 region {one:.2f}, "
            f"3 regions {three:.2f} | loops 3 regions: sequential {seq or 0:.2f}, parallel "
            f"{par or 0:.2f} | 3 / 1 region {ratio(three, one)} (loops: "
            f"{ratio(seq, one)}, {ratio(par, one)}) | <= 1.3 |"
        )
        lines.append(
            f"| same: master bytes served / image size (proxy count) | {reads or 0:.2f} | "
            f"{peer_reads or 0:.2f} | - | 1.0 (peers 3) |"
        )
    gs3, par3, seq3 = get("three", "gs-multi"), get("three", "loop-par"), get("three", "loop-seq")
    if gs3 and par3:
        lines.append(
            f"| 3 regions unthrottled, 200 MB: wall s | {gs3:.2f} (1 region "
            f"{get('three-1region', 'gs-seq') or 0:.2f}) | loops: parallel {par3:.2f}, "
            f"sequential {seq3 or 0:.2f} | x parallel loops {ratio(gs3, par3)} | <= 0.8 |"
        )
    small = [r for r in rows if r["label"].startswith("rss") and r["peer"] == "gs-multi"]
    loops = [r for r in rows if r["label"].startswith("rss") and r["peer"] == "loop-par"]
    if small:
        small.sort(key=lambda r: r["image_mib"])
        rss = ", ".join(f"{r['image_mib']:.0f} MB: {r['rss_peak_mib']:.0f}" for r in small)
        cpu = ", ".join(f"{r['cpu_s_per_gb']:.2f}" for r in small)
        lcpu = ", ".join(
            f"{r['cpu_s_per_gb']:.2f}" for r in sorted(loops, key=lambda r: r["image_mib"])
        )
        lrss = ", ".join(
            f"{r['rss_peak_mib']:.0f}" for r in sorted(loops, key=lambda r: r["image_mib"])
        )
        spread = small[-1]["rss_peak_mib"] - small[0]["rss_peak_mib"]
        lines.append(
            f"| peak RSS MB, 3 regions in one process | {rss} (spread {spread:.1f}) | "
            f"parallel loops {lrss} | - | <= 80 at 1 GB, spread <= 10 |"
        )
        lines.append(
            f"| client CPU s per GB delivered (3 regions) | {cpu} | parallel loops {lcpu} | "
            f"- | beside the loop |"
        )
    return "\n".join(lines)


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | peer | regions | image MB | wall s (median) | MB/s delivered | "
        "client CPU s | CPU s/GB | peak RSS MB | master reads (log) | master reads (proxy) | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "wall_s" not in r:
            lines.append(f"| {r['label']} | {r['peer']} | {r.get('error')} |||||||||{r['ok']}|")
            continue
        proxy = f"{r['proxy_reads']:.2f}" if "proxy_reads" in r else "-"
        lines.append(
            f"| {r['label']} | {r['peer']} | {r['regions']} | {r['image_mib']:.0f} | "
            f"{r['wall_s']:.2f} | {r['mib_s']:.0f} | {r['cpu_s']:.2f} | {r['cpu_s_per_gb']:.2f} | "
            f"{r['rss_peak_mib']:.0f} | {r['master_reads']:.2f} | {proxy} | {r['ok']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
