"""Fan-out over uneven links (issue 14): ratios against the peers, all measured in one run.

Run: ``python bench/uneven.py [--repeat 3] [--repeat-big 3] [--json bench/uneven.json]
[--workdir /tmp/tb-perf] [--only single,wan,uneven,stall,big,service] [--keep]``, then
``python bench/plot.py bench/perf.json docs/performance.png --uneven bench/uneven.json``.

Links are emulated with ``bench/proxy.py`` (one token bucket per link, 127.0.0.1): the
catalog's image endpoint of a region points at its proxy for a scenario and is restored
afterwards. The master's link limits what it sends (downloads); a region's link limits
what it receives (uploads). Master bytes = what the master's proxy relayed.

Scenarios (every job in its own child process, ``bench/peers.py``; runs interleaved):

``single``  (existing figure) 200 MB to Trento, no link limits: ``gs-seq`` vs ``loop-seq``.
``wan``     (existing figure) master at 400 Mbit/s, regions unlimited: ``gs-seq`` to Trento,
            ``gs-multi`` and ``loop-par`` to Trento, Lannion, other:Madrid.
``uneven``  master 400 Mbit/s; Trento and Madrid 400 Mbit/s, Lannion 50 Mbit/s; 200 MB:
            each region alone (``gs-multi`` with that region only), the three together
            (``gs-multi``: one read, each region at its own pace) and ``loop-par``.
            Per-region finish times (``on_done`` in the child) against the time alone.
``stall``   the same links, Lannion's stops after 10 % of the image: ``gs-multi`` with a
            10 s data timeout (Lannion fails alone); Trento and Madrid against alone.
``big``     ``uneven`` with 1 GB (``--repeat-big`` runs); also the peak RSS at 1 GB.
``before``  with ``--baseline DIR`` (a checkout of the code before issue 14, e.g.
            ``git archive <commit> glancesync | tar -x -C DIR``): ``gs-multi`` of that
            code against this one, interleaved, on ``uneven``, ``wan`` (3 regions) and
            ``three`` (no link limit): the lock-step broadcast against the spool.
``service`` master 400 Mbit/s, regions unlimited: the real service (gunicorn, PostgreSQL)
            syncing the three regions with one ``POST /v1/tasks`` vs three
            ``POST /v1/regions/<r>/tasks``: master bytes and wall time until every task
            ended.

Not a test: pytest never collects it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(REPO), str(BENCH_DIR), str(REPO / "tests" / "integration")]

from peers import make_session  # noqa: E402
from perf import THREE, Bed, region_behind_proxy, spec_for  # noqa: E402
from proxy import ThrottledProxy  # noqa: E402
from transfer import MASTER, MIB, create_master_images, ensure_testbed, machine, run_peer  # noqa: E402

FAST, SLOW, MASTER_MBIT = 400.0, 50.0, 400.0
CATALOG_NAME = {"Trento": "Trento", "Lannion": "Lannion", "other:Madrid": "Madrid"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--repeat-big", type=int, default=3)
    parser.add_argument("--size", type=int, default=200, help="MiB")
    parser.add_argument("--size-big", type=int, default=1024, help="MiB")
    parser.add_argument("--json", default=str(BENCH_DIR / "uneven.json"))
    parser.add_argument("--workdir", default="/tmp/tb-perf")
    parser.add_argument("--only", default="single,wan,uneven,stall,big,service")
    parser.add_argument("--keep", action="store_true", help="leave the testbed running")
    parser.add_argument("--baseline", metavar="DIR", help="code to compare with (before)")
    parser.add_argument("--report", metavar="JSON", nargs="+", help="only print the tables")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- links


@contextmanager
def links(bed: Bed, limits: dict[str, dict[str, Any]]) -> Iterator[dict[str, ThrottledProxy]]:
    """``limits``: region (``MASTER`` or a target region) -> ThrottledProxy options with
    ``mbit``; each region's catalog image endpoint points at its proxy for the block."""
    with ExitStack() as stack:
        proxies = {
            region: stack.enter_context(behind_proxy(bed, region, **options))
            for region, options in limits.items()
        }
        yield proxies


@contextmanager
def behind_proxy(bed: Bed, region: str, mbit: float, **options: Any) -> Iterator[ThrottledProxy]:
    name = CATALOG_NAME.get(region, region)
    sess = bed.other_sess if region.startswith("other:") else bed.sess
    with region_behind_proxy(sess, bed.info, name, mbit, **options) as proxy:
        yield proxy


def uneven_links(stall_after: int | None = None) -> dict[str, dict[str, Any]]:
    return {
        MASTER: {"mbit": MASTER_MBIT},
        "Trento": {"mbit": FAST, "direction": "up"},
        "other:Madrid": {"mbit": FAST, "direction": "up"},
        "Lannion": {"mbit": SLOW, "direction": "up", "stall_after": stall_after},
    }


# ---------------------------------------------------------------- one job


def job(
    bed: Bed,
    peer: str,
    regions: list[str],
    images: list[dict[str, Any]],
    rundir: Path,
    label: str,
    k: int,
    master: ThrottledProxy | None,
    **extra: Any,
) -> dict[str, Any]:
    spec = {**spec_for(bed, regions, images, rundir), **extra}
    served = master.served if master else 0
    tag = f"{label}-{k}" + ("-before" if extra.get("code") else "")
    result = run_peer(peer, spec, rundir, tag)  # type: ignore[arg-type]
    result.update(label=label, regions=regions, image_bytes=sum(i["size"] for i in images))
    result["master_bytes"] = (master.served - served) if master else None
    expected_failed = set(extra.get("expect_failed", ()))
    ok_regions = [r for r in regions if r not in expected_failed]
    result["check"] = bed.verify(ok_regions, images) if not result.get("error") else "-"
    bed.clean_targets()
    times = " ".join(f"{r}={t:.1f}" for r, t in sorted(result.get("region_s", {}).items()))
    print(
        f"  {label:<14} {peer:<9} {','.join(regions):<30} run {k}: {result.get('wall_s', 0):6.1f} s"
        f"  [{times}]  rss {result.get('rss_peak_kib', 0) / 1024:3.0f} MB  master "
        f"{(result['master_bytes'] or 0) / MIB:5.0f} MB  {result.get('error') or result['check']}",
        file=sys.stderr,
        flush=True,
    )
    return result


# ---------------------------------------------------------------- scenarios


def single(bed, images, rundir, repeat) -> list[dict[str, Any]]:
    runs = []
    for k in range(repeat):
        for peer in ("gs-seq", "loop-seq"):
            runs.append(job(bed, peer, ["Trento"], images, rundir, "single", k, None))
        for peer in ("gs-multi", "loop-par"):
            runs.append(job(bed, peer, THREE, images, rundir, "three", k, None))
    return runs


def wan(bed, images, rundir, repeat) -> list[dict[str, Any]]:
    runs = []
    with links(bed, {MASTER: {"mbit": MASTER_MBIT}}) as proxies:
        for k in range(repeat):
            runs.append(job(bed, "gs-seq", ["Trento"], images, rundir, "wan-1", k, proxies[MASTER]))
            for peer in ("gs-multi", "loop-par"):
                runs.append(job(bed, peer, THREE, images, rundir, "wan-3", k, proxies[MASTER]))
    return runs


def uneven(bed, images, rundir, repeat, label) -> list[dict[str, Any]]:
    runs = []
    with links(bed, uneven_links()) as proxies:
        master = proxies[MASTER]
        for k in range(repeat):
            for region in THREE:
                runs.append(
                    job(bed, "gs-multi", [region], images, rundir, f"{label}-alone", k, master)
                )
            for peer in ("gs-multi", "loop-par"):
                runs.append(job(bed, peer, THREE, images, rundir, label, k, master))
    return runs


def stall(bed, images, rundir, repeat) -> list[dict[str, Any]]:
    runs = []
    tenth = images[0]["size"] // 10
    for k in range(repeat):
        with links(bed, uneven_links(stall_after=tenth)) as proxies:
            runs.append(
                job(
                    bed,
                    "gs-multi",
                    THREE,
                    images,
                    rundir,
                    "stall",
                    k,
                    proxies[MASTER],
                    data_timeout=10.0,
                    expect_failed=["Lannion"],
                    env={"GLANCESYNC_RETRY_ATTEMPTS": "1"},  # one 10 s timeout, not four
                )
            )
    return runs


def before(bed, images, rundir, repeat, baseline) -> list[dict[str, Any]]:
    """The same 3-region jobs with the code before the spool (``peer`` gs-multi-before)."""
    runs = []
    setups = [("before-three", {}), ("before-wan", {MASTER: {"mbit": MASTER_MBIT}})]
    setups.append(("before-uneven", uneven_links()))
    for label, limits in setups:
        with links(bed, limits) as proxies:
            master = proxies.get(MASTER)
            for k in range(repeat):
                for code in (baseline, ""):
                    run = job(bed, "gs-multi", THREE, images, rundir, label, k, master, code=code)
                    run["peer"] = "gs-multi-before" if code else "gs-multi"
                    runs.append(run)
    return runs


def service(bed, tb, images, rundir, repeat) -> list[dict[str, Any]]:
    from fixtures_glance import config_text
    from service_process import ServiceProcess

    from testbed.clients import session_for

    runs = []
    svc = ServiceProcess(tb.info, Path(tempfile.mkdtemp(dir=rundir)), rundir / "no-images", 1)
    (svc.folder / "glancesync.conf").write_text(
        config_text(tb.info, rundir / "no-images", other="")
    )
    with links(bed, {MASTER: {"mbit": MASTER_MBIT}}) as proxies, svc.running():
        token = session_for(tb.info).get_token()
        svc.get("/v1/regions/Trento/images", token)  # warm up: configuration, catalog, token
        ways = ["one POST /v1/tasks", "three POSTs"]
        for k in range(repeat):
            for way in ways if k % 2 == 0 else ways[::-1]:
                runs.append(service_run(bed, svc, token, images, way, k, proxies[MASTER]))
    return runs


def service_run(bed, svc, token, images, way, k, master) -> dict[str, Any]:
    served, t0 = master.served, time.perf_counter()
    headers = {"X-Auth-Token": token}
    if way.startswith("one"):
        answer = svc.http.post(
            f"{svc.url}/v1/tasks", json={"regions": THREE}, headers=headers, timeout=30
        )
        tasks = answer.json()["tasks"]
    else:
        tasks = [
            svc.http.post(
                f"{svc.url}/v1/regions/{quote(r, safe=':')}/tasks", headers=headers, timeout=30
            ).json()
            for r in THREE
        ]
    ends = [
        svc.wait_task(f"/v1/regions/{quote(t['region'], safe=':')}/tasks/{t['taskId']}", token, 600)
        for t in tasks
    ]
    wall = time.perf_counter() - t0
    result = {
        "label": "service",
        "peer": way,
        "regions": THREE,
        "wall_s": wall,
        "image_bytes": images[0]["size"],
        "master_bytes": master.served - served,
        "check": bed.verify(THREE, images)
        if all(e["status"] == "synced" for e in ends)
        else "; ".join(f"{e['region']}: {e['status']} {e['message']}" for e in ends),
    }
    bed.clean_targets()
    print(
        f"  service {way:<20} run {k}: {wall:6.1f} s  "
        f"master {result['master_bytes'] / MIB:5.0f} MB  "
        f"{result['check']}",
        file=sys.stderr,
        flush=True,
    )
    return result


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.report:
        payloads = [json.loads(Path(path).read_text()) for path in args.report]
        merged = {**payloads[0], "runs": [r for p in payloads for r in p["runs"]]}
        print(report(merged))
        return 0
    only = set(args.only.split(","))
    tb, started = ensure_testbed(args.workdir)
    payload: dict[str, Any] = {
        "args": vars(args),
        "machine": machine(),
        "load": {"start": list(os.getloadavg())},
        "runs": [],
    }
    try:
        for runs in scenarios(tb, args, only):
            payload["runs"] += runs
            payload["load"]["end"] = list(os.getloadavg())
            Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")  # after each
    finally:
        if started and not args.keep:
            tb.stop()
    print(report(payload))
    return 0


def scenarios(tb: Any, args: argparse.Namespace, only: set[str]) -> Iterator[list[dict[str, Any]]]:
    bed = Bed(tb.info)
    bed.other_sess = make_session(bed.other_cred)
    bed.clean()
    rundir = Path(tb.workdir) / "uneven" / time.strftime("%Y%m%d-%H%M%S")
    rundir.mkdir(parents=True)
    try:
        images = create_master_images(bed.master, 1, args.size)
        if "single" in only:
            yield single(bed, images, rundir, args.repeat)
        if "wan" in only:
            yield wan(bed, images, rundir, args.repeat)
        if "uneven" in only:
            yield uneven(bed, images, rundir, args.repeat, "uneven")
        if "stall" in only:
            yield stall(bed, images, rundir, max(1, args.repeat - 1))
        if "before" in only and args.baseline:
            yield before(bed, images, rundir, args.repeat, args.baseline)
        if "service" in only:
            yield service(bed, tb, images, rundir, max(1, args.repeat - 1))
        bed.clean()
        if "big" in only:
            big = create_master_images(bed.master, 1, args.size_big)
            yield uneven(bed, big, rundir, args.repeat_big, "big")
    finally:
        bed.clean()


# ---------------------------------------------------------------- summary


def good(runs: list[dict[str, Any]], label: str, peer: str, regions: list[str] | None = None):
    return [
        r
        for r in runs
        if r["label"] == label
        and r["peer"] == peer
        and r.get("check") == "ok"
        and not r.get("error")
        and (regions is None or r["regions"] == regions)
    ]


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def region_time(runs, label, peer, region, regions=None) -> float | None:
    return med(
        [
            r["region_s"][region]
            for r in good(runs, label, peer, regions)
            if region in r.get("region_s", {})
        ]
    )


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "n/a"


def fmt(value: float | None, spec: str = ".1f") -> str:
    return format(value, spec) if value is not None else "n/a"


def report(payload: dict[str, Any]) -> str:
    runs = payload["runs"]
    lines = ["| figure | glancesync | peers (same run) | ratio | target |", "|---|---|---|---|---|"]
    lines += existing_rows(runs, payload["args"]["size"])
    for label, size in (("uneven", payload["args"]["size"]), ("big", payload["args"]["size_big"])):
        lines += uneven_rows(runs, label, size)
    lines += stall_rows(runs)
    lines += service_rows(runs)
    lines += before_rows(runs)
    load = payload.get("load", {})
    lines.append("")
    lines.append(
        f"Load average at start {load.get('start')}, at end {load.get('end')}; "
        f"machine {payload['machine']}"
    )
    return "\n".join(lines)


def existing_rows(runs, size) -> list[str]:
    rows = []
    gs, loop = (med([r["wall_s"] for r in good(runs, "single", p)]) for p in ("gs-seq", "loop-seq"))
    if gs and loop:
        rows.append(
            f"| 1 region, {size} MB, no link limit: wall s | {gs:.2f} | loop {loop:.2f} | "
            f"loop / glancesync {ratio(loop, gs)} | >= 1.1 |"
        )
    gs3, par3 = (
        med([r["wall_s"] for r in good(runs, "three", p)]) for p in ("gs-multi", "loop-par")
    )
    if gs3 and par3:
        rows.append(
            f"| 3 regions, no link limit, {size} MB: wall s | {gs3:.2f} | "
            f"parallel loops {par3:.2f} | glancesync / loops {ratio(gs3, par3)} | <= 0.8 |"
        )
    one = med([r["wall_s"] for r in good(runs, "wan-1", "gs-seq")])
    three = med([r["wall_s"] for r in good(runs, "wan-3", "gs-multi")])
    par = med([r["wall_s"] for r in good(runs, "wan-3", "loop-par")])
    if one and three:
        reads = med([r["master_bytes"] / r["image_bytes"] for r in good(runs, "wan-3", "gs-multi")])
        rows.append(
            f"| 3 regions, master at 400 Mbit/s, {size} MB: wall s | 1 region {one:.2f}, 3 regions "
            f"{three:.2f} (master reads {fmt(reads, '.2f')}) | parallel loops {fmt(par, '.2f')} | "
            f"3 / 1 region {ratio(three, one)} | <= 1.3 |"
        )
    return rows


def uneven_rows(runs, label, size) -> list[str]:
    rows = []
    for region, target in (("Trento", 1.15), ("other:Madrid", 1.15), ("Lannion", 1.1)):
        alone = region_time(runs, f"{label}-alone", "gs-multi", region)
        group = region_time(runs, label, "gs-multi", region, THREE)
        loops = region_time(runs, label, "loop-par", region, THREE)
        if alone is None or group is None:
            continue
        link = "50" if region == "Lannion" else "400"
        rows.append(
            f"| uneven links, {size} MB: {region} ({link} Mbit/s) finish s | {group:.1f} (alone "
            f"{alone:.1f}) | parallel loops {fmt(loops)} | {ratio(group, alone)} x alone "
            f"(loops {ratio(loops, alone)}) | <= {target} |"
        )
    for region in ("Trento", "other:Madrid"):  # the slow link's cost to the fast regions
        allfast = region_time(runs, "wan-3", "gs-multi", region, THREE)
        group = region_time(runs, label, "gs-multi", region, THREE)
        if label == "uneven" and allfast and group:
            rows.append(
                f"| same: {region} finish s, Lannion at 50 vs every region unlimited (wan) | "
                f"{group:.1f} | all fast {allfast:.1f} | {ratio(group, allfast)} | ~1.0 |"
            )
    gs = good(runs, label, "gs-multi", THREE)
    loops = good(runs, label, "loop-par", THREE)
    if gs:
        reads = med([r["master_bytes"] / r["image_bytes"] for r in gs])
        lreads = med([r["master_bytes"] / r["image_bytes"] for r in loops])
        rss = max(r["rss_peak_kib"] for r in gs) / 1024
        lrss = max((r["rss_peak_kib"] for r in loops), default=0) / 1024
        rows.append(
            f"| same: master bytes / image, peak RSS MB | {fmt(reads, '.2f')}, {rss:.0f} MB | "
            f"loops {fmt(lreads, '.2f')}, {lrss:.0f} MB | - | <= 1.05; <= 80 MB |"
        )
    return rows


def stall_rows(runs) -> list[str]:
    rows = []
    for region in ("Trento", "other:Madrid"):
        alone = region_time(runs, "uneven-alone", "gs-multi", region)
        stalled = region_time(runs, "stall", "gs-multi", region, THREE)
        if stalled is not None:
            rows.append(
                f"| Lannion stalled after 10 %: {region} finish s | {stalled:.1f} (alone "
                f"{fmt(alone)}) | - | {ratio(stalled, alone)} x alone | <= 1.15 |"
            )
    gs = good(runs, "stall", "gs-multi", THREE)
    if gs:
        reads = med([r["master_bytes"] / r["image_bytes"] for r in gs])
        rows.append(
            f"| same: master bytes / image (Lannion failed alone) | {fmt(reads, '.2f')} "
            "| - | - | - |"
        )
    return rows


def before_rows(runs) -> list[str]:
    rows = []
    for label, what in (
        ("before-uneven", "uneven links"),
        ("before-wan", "master at 400 Mbit/s"),
        ("before-three", "no link limit"),
    ):
        for region in ("Trento", "other:Madrid", "Lannion"):
            new = region_time(runs, label, "gs-multi", region, THREE)
            old = region_time(runs, label, "gs-multi-before", region, THREE)
            if new is None or old is None:
                continue
            rows.append(
                f"| 3 regions, {what}: {region} finish s, spool vs lock-step (before) | "
                f"{new:.1f} | before {old:.1f} | {ratio(new, old)} | faster or equal |"
            )
    return rows


def service_rows(runs) -> list[str]:
    one = [
        r
        for r in runs
        if r["label"] == "service" and r["peer"].startswith("one") and r["check"] == "ok"
    ]
    three = [
        r
        for r in runs
        if r["label"] == "service" and r["peer"].startswith("three") and r["check"] == "ok"
    ]
    if not one or not three:
        return []
    w1, w3 = med([r["wall_s"] for r in one]), med([r["wall_s"] for r in three])
    m1 = med([r["master_bytes"] / r["image_bytes"] for r in one])
    m3 = med([r["master_bytes"] / r["image_bytes"] for r in three])
    return [
        f"| service, 3 regions, master at 400 Mbit/s: wall s, master bytes / image | one POST "
        f"/v1/tasks: {w1:.1f} s, {m1:.2f} | three POSTs: {w3:.1f} s, {m3:.2f} | wall "
        f"{ratio(w1, w3)} | master 1.0 vs 3 |"
    ]


if __name__ == "__main__":
    sys.exit(main())
