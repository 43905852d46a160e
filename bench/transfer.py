"""Benchmark: sync N images of S MB to R regions, glancesync against its peers.

Run: ``python bench/transfer.py [--images 2] [--size 32] [--regions Trento,Lannion]
[--repeat 1] [--peers loop-seq,...] [--json FILE] [--workdir DIR] [--keep]``.

On the local testbed (``testbed/``, real Keystone + Glance on 127.0.0.1) the master region
gets N random ``raw`` images once per run; then every peer (``bench/peers.py``) copies them
to the target regions, each in its own child process, from empty targets. Per peer:
wall time, throughput, the child's peak RSS and CPU, and the bytes the master Glance
served, counted on the master side from its gunicorn access log (the harness starts the
testbed with ``GUNICORN_CMD_ARGS`` asking for one; a testbed started otherwise has none
and the column says n/a). ``reads`` = master data bytes / image bytes: R for a peer that
reads the master once per region, 1 for one that reads it once, 0 for local files.

Not a test: pytest never collects it (tests live in ``tests/``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(REPO)]  # the testbed package lives at the repository root

from peers import IMAGE_FIELDS, PEERS, ChunkReader, glance, make_session  # noqa: E402

from testbed import Testbed  # noqa: E402

MIB = 1024 * 1024
MASTER = "Spain2"
PREFIX = "bench-"
DEFAULT_PEERS = ("loop-seq", "loop-par", "import", "gs-seq", "gs-par", "gs-multi", "gs-file")
ACCESS_MARK = "BENCH-ACCESS"
# %(r)s is the raw request line: PATH_INFO is rewritten by Glance's URL map before logging.
ACCESS_ARGS = f"--access-logfile - --access-logformat '{ACCESS_MARK} \"%(r)s\" %(s)s %(B)s'"
ACCESS_LINE = re.compile(rf'{ACCESS_MARK} "(\S+) (\S+) [^"]*" (\d+) (\d+|None|-)')
DATA_PATH = re.compile(r"^/v2/images/[0-9a-f-]+/file")


# ---------------------------------------------------------------- arguments


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2, help="N images (default 2)")
    parser.add_argument("--size", type=int, default=32, help="S MiB per image (default 32)")
    parser.add_argument("--regions", default="Trento,Lannion", help="target regions")
    parser.add_argument("--repeat", type=int, default=1, help="K runs of every peer")
    parser.add_argument("--peers", default=",".join(DEFAULT_PEERS), help="peers to run")
    parser.add_argument("--json", metavar="FILE", help="also write every run as JSON")
    parser.add_argument("--workdir", default="/tmp/tb-bench", help="testbed workdir")
    parser.add_argument("--keep", action="store_true", help="leave the testbed running")
    args = parser.parse_args(argv)
    args.regions = [r for r in args.regions.split(",") if r]
    args.peers = [p for p in args.peers.split(",") if p]
    unknown = sorted(set(args.peers) - set(PEERS))
    if unknown:
        parser.error(f"unknown peers {unknown}; known: {sorted(PEERS)}")
    return args


# ---------------------------------------------------------------- testbed


@contextmanager
def env_var(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the servers started inside the block only."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def ensure_testbed(workdir: str) -> tuple[Testbed, bool]:
    """A running testbed in ``workdir`` (reused as is), or a new one with access logs.

    gunicorn reads ``GUNICORN_CMD_ARGS`` from its environment, which the testbed passes on:
    that turns the access log on without touching the testbed code. Returns (testbed,
    started here), so only a testbed started here is stopped at the end.
    """
    tb = Testbed(workdir)
    if tb.running():
        return tb, False
    with env_var("GUNICORN_CMD_ARGS", ACCESS_ARGS):
        tb.start()
    return tb, True


def admin_cred(info: dict[str, Any], region: str) -> dict[str, str]:
    ks = info["keystones"][info["regions"][region]["keystone"]]
    admin = ks["admin"]
    return {
        "auth_url": ks["url"],
        "username": admin["username"],
        "password": admin["password"],
        "project_name": admin["project_name"],
    }


def check_regions(info: dict[str, Any], regions: list[str]) -> None:
    """The peers use one credential: every target must share the master's Keystone."""
    master_ks = info["regions"][MASTER]["keystone"]
    for region in regions:
        if region not in info["regions"] or region == MASTER:
            raise SystemExit(f"unknown target region {region!r}")
        if info["regions"][region]["keystone"] != master_ks:
            raise SystemExit(f"{region} is not on {master_ks}: the peers need one Keystone")


# ---------------------------------------------------------------- master side


class MasterLog:
    """Bytes served by the master Glance, read from its gunicorn access log."""

    def __init__(self, path: str) -> None:
        self.path = path

    def mark(self) -> int:
        return os.path.getsize(self.path)

    def served(self, since: int) -> dict[str, int]:
        """Response body bytes after offset ``since``: image data GETs and everything."""
        with open(self.path, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        totals = {"data_bytes": 0, "data_gets": 0, "all_bytes": 0, "requests": 0}
        for match in ACCESS_LINE.finditer(text):
            method, path, _status, sent = match.groups()
            size = int(sent) if sent.isdigit() else 0
            totals["requests"] += 1
            totals["all_bytes"] += size
            if method == "GET" and DATA_PATH.match(path):
                totals["data_gets"] += 1
                totals["data_bytes"] += size
        return totals

    def available(self, client: Any) -> bool:
        """True if one authenticated request shows up in the log (access log switched on)."""
        since = self.mark()
        list(client.images.list(limit=1))
        time.sleep(0.3)
        return self.served(since)["requests"] > 0


def random_chunks(size: int) -> Iterator[bytes]:
    """Incompressible data, made while uploading: no image-sized buffer."""
    left = size
    while left > 0:
        chunk = os.urandom(min(MIB, left))
        left -= len(chunk)
        yield chunk


def delete_named(client: Any, prefix: str = PREFIX) -> int:
    """Delete the benchmark's images of one region; other images are left alone."""
    doomed = [img["id"] for img in client.images.list() if img["name"].startswith(prefix)]
    for image_id in doomed:
        client.images.delete(image_id)
    return len(doomed)


def create_master_images(client: Any, count: int, size_mib: int) -> list[dict[str, Any]]:
    tag = time.strftime("%H%M%S")
    size = size_mib * MIB
    images = []
    for i in range(count):
        made = client.images.create(name=f"{PREFIX}{tag}-{i}", **IMAGE_FIELDS)
        client.images.upload(made["id"], ChunkReader(random_chunks(size)), image_size=size)
        record = client.images.get(made["id"])
        images.append(
            {"id": made["id"], "name": made["name"], "size": size, "hash": record["os_hash_value"]}
        )
    return images


def foreign_master_images(client: Any) -> list[str]:
    """Master images glancesync would sync too, skewing its numbers."""
    return [img["name"] for img in client.images.list() if not img["name"].startswith(PREFIX)]


def is_copy(record: dict[str, Any], os_hash: str) -> bool:
    return record["status"] == "active" and record.get("os_hash_value") == os_hash


def verify(clients: dict[str, Any], images: list[dict[str, Any]]) -> str:
    """'ok' if every target holds exactly one active, same-hash copy of every image."""
    problems = []
    for region, client in clients.items():
        by_name: dict[str, list[dict[str, Any]]] = {}
        for img in client.images.list():
            by_name.setdefault(img["name"], []).append(img)
        for image in images:
            copies = by_name.get(image["name"], [])
            good = [c for c in copies if is_copy(c, image["hash"])]
            if len(copies) != 1 or len(good) != 1:
                problems.append(f"{region}:{image['name']} x{len(copies)} ok{len(good)}")
    return "ok" if not problems else "; ".join(problems)


# ---------------------------------------------------------------- peers


def glancesync_config(info: dict[str, Any], regions: list[str], images_dir: str) -> str:
    cred = admin_cred(info, MASTER)
    password = base64.b64encode(cred["password"].encode()).decode()
    return (
        f"[main]\nmaster_region = {MASTER}\nmax_children = {len(regions)}\n"
        f"images_dir = {images_dir}\n\n[master]\n"
        f"credential = {cred['username']},{password},{cred['auth_url']},{cred['project_name']}\n"
        "metadata_set =\n"
    )


def peer_spec(
    args: argparse.Namespace, info: dict[str, Any], images: list[dict[str, Any]], rundir: Path
) -> dict[str, Any]:
    master_store = Path(info["workdir"]) / info["regions"][MASTER]["server"] / "images"
    return {
        "cred": admin_cred(info, MASTER),
        "master_region": MASTER,
        "regions": args.regions,
        "images": images,
        "rundir": str(rundir),
        "gs_config": glancesync_config(info, args.regions, str(rundir / "no-local-images")),
        "gs_config_file": glancesync_config(info, args.regions, str(master_store)),
    }


def child_env() -> dict[str, str]:
    """The repository first on the path: glancesync as checked out, installed or not."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_peer(peer: str, spec: dict[str, Any], rundir: Path, k: int) -> dict[str, Any]:
    """One peer in a fresh child; wait4 gives that child's own peak RSS and CPU."""
    spec = {**spec, "peer": peer, "result": str(rundir / f"{peer}-{k}.result.json")}
    spec_path = rundir / f"{peer}-{k}.spec.json"
    spec_path.write_text(json.dumps(spec))
    t0 = time.perf_counter()
    with open(rundir / f"{peer}-{k}.log", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "peers.py"), str(spec_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=rundir,
            env=child_env(),
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    outer = time.perf_counter() - t0
    try:
        result = json.loads(Path(spec["result"]).read_text())
    except (OSError, ValueError):
        result = {"peer": peer, "error": f"child exited {proc.returncode}, see {out.name}"}
    result.update(
        repeat=k,
        process_wall_s=outer,
        child_maxrss_kib=usage.ru_maxrss,
        child_cpu_s=usage.ru_utime + usage.ru_stime,
    )
    return result


def measure(args: argparse.Namespace, tb: Testbed, rundir: Path) -> list[dict[str, Any]]:
    """Master images once, then every peer K times from empty targets."""
    info = tb.info
    sess = make_session(admin_cred(info, MASTER))
    master = glance(sess, MASTER)
    targets = {r: glance(sess, r) for r in args.regions}
    log = MasterLog(info["regions"][MASTER]["log"])
    has_log = log.available(master)
    if not has_log:
        print(
            "note: the master Glance has no access log (testbed not started by this "
            "script): master bytes are n/a",
            file=sys.stderr,
        )
    for client in (master, *targets.values()):
        delete_named(client)
    if others := foreign_master_images(master):
        print(
            f"warning: master has other images {others}: glancesync syncs them too", file=sys.stderr
        )
    images = create_master_images(master, args.images, args.size)
    spec = peer_spec(args, info, images, rundir)
    runs: list[dict[str, Any]] = []
    skipped: set[str] = set()
    try:
        for k in range(args.repeat):
            for peer in args.peers:
                if peer in skipped:
                    continue
                since = log.mark()
                result = run_peer(peer, spec, rundir, k)
                time.sleep(0.3)  # gunicorn writes the access line once the body is sent
                result["master"] = log.served(since) if has_log else None
                result["check"] = verify(targets, images)
                if str(result.get("error") or "").startswith("skipped"):
                    skipped.add(peer)
                for client in targets.values():
                    delete_named(client)
                runs.append(result)
                print(progress_line(result), file=sys.stderr, flush=True)
    finally:
        for client in (master, *targets.values()):
            delete_named(client)
    return runs


def progress_line(result: dict[str, Any]) -> str:
    wall = result.get("wall_s")
    text = f"  {result['peer']:<9} run {result['repeat']}: "
    text += f"{wall:.2f} s" if wall is not None else "-"
    if result.get("error"):
        text += f"  [{result['error']}]"
    elif result.get("check") != "ok":
        text += f"  [check: {result['check']}]"
    return text


# ---------------------------------------------------------------- report


def summarise(args: argparse.Namespace, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per peer: medians of K runs, worst peak RSS, wall relative to loop-seq."""
    image_bytes = args.images * args.size * MIB
    delivered_mib = args.images * args.size * len(args.regions)
    rows = []
    for peer in args.peers:
        mine = [r for r in runs if r["peer"] == peer]
        if not mine:
            continue
        good = [r for r in mine if not r.get("error") and r.get("check") == "ok"]
        row: dict[str, Any] = {"peer": peer, "runs": len(mine), "ok": len(good)}
        row["good"] = f"{len(good)}/{len(mine)}"
        bad = [r for r in mine if r not in good]
        if bad:
            row["problem"] = f"{bad[0]['peer']}: {bad[0].get('error') or bad[0].get('check')}"
        if not good:
            row["error"] = mine[0].get("error") or mine[0].get("check")
            rows.append(row)
            continue
        wall = statistics.median(r["wall_s"] for r in good)
        row.update(
            wall_s=wall,
            min_s=min(r["wall_s"] for r in good),
            mib_s=delivered_mib / wall,
            rss_peak_mib=max(r["rss_peak_kib"] for r in good) / 1024,
            rss_growth_mib=max(r["rss_peak_kib"] - r["rss_baseline_kib"] for r in good) / 1024,
            cpu_s=statistics.median(r["cpu_s"] for r in good),
        )
        if all(r.get("master") for r in good):
            served = statistics.median(r["master"]["data_bytes"] for r in good)
            row.update(master_mib=served / MIB, reads=served / image_bytes)
        rows.append(row)
    base = next((r for r in rows if r["peer"] == "loop-seq" and "wall_s" in r), None)
    for row in rows:
        if base and "wall_s" in row:
            row["vs_loop"] = row["wall_s"] / base["wall_s"]
    return rows


COLUMNS = (
    ("peer", "peer", "{}"),
    ("wall_s", "wall s", "{:.2f}"),
    ("min_s", "min s", "{:.2f}"),
    ("mib_s", "MB/s", "{:.0f}"),
    ("vs_loop", "x loop-seq", "{:.2f}"),
    ("rss_peak_mib", "peak RSS MB", "{:.0f}"),
    ("rss_growth_mib", "RSS growth MB", "{:.1f}"),
    ("cpu_s", "CPU s", "{:.2f}"),
    ("master_mib", "master MB", "{:.0f}"),
    ("reads", "master reads", "{:.2f}"),
    ("good", "ok runs", "{}"),
)


def table(rows: list[dict[str, Any]]) -> str:
    """A markdown table (pasteable into bench/README.md)."""
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |"]
    lines.append("|" + "|".join("---" for _ in COLUMNS) + "|")
    for row in rows:
        if "wall_s" not in row:
            lines.append(f"| {row['peer']} | {row.get('error')} |")
            continue
        cells = [fmt.format(row[key]) if key in row else "n/a" for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(args: argparse.Namespace, rows: list[dict[str, Any]]) -> list[str]:
    """The answers the benchmark is for: glancesync vs the plain loop, reads of the master."""
    by = {r["peer"]: r for r in rows if "wall_s" in r}
    out = [f"{r['peer']}: {r['ok']}/{r['runs']} runs ok" for r in rows if r["ok"] < r["runs"]]
    out += [f"  first problem: {r['problem']}" for r in rows if r.get("problem")]
    for gs, loop in (("gs-seq", "loop-seq"), ("gs-par", "loop-par"), ("gs-multi", "loop-par")):
        if gs in by and loop in by:
            ratio = by[gs]["wall_s"] / by[loop]["wall_s"]
            out.append(f"{gs} / {loop} wall time: {ratio:.2f}")
    for peer, row in by.items():
        if "reads" in row:
            times = "once" if round(row["reads"]) == 1 else f"{row['reads']:.2f} times"
            if round(row["reads"], 2) == 0:
                times = "never (local files)"
            out.append(f"{peer}: master image read {times} for {len(args.regions)} regions")
    return out


def skipped(row: dict[str, Any]) -> bool:
    return str(row.get("error") or "").startswith("skipped")


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.monotonic()
    tb, started = ensure_testbed(args.workdir)
    print(
        f"testbed {tb.workdir} ({'started' if started else 'reused'}, "
        f"{time.monotonic() - t0:.0f} s)",
        file=sys.stderr,
    )
    try:
        check_regions(tb.info, args.regions)
        rundir = Path(tb.workdir) / "bench" / time.strftime("%Y%m%d-%H%M%S")
        rundir.mkdir(parents=True)
        runs = measure(args, tb, rundir)
    finally:
        if started and not args.keep:
            tb.stop()
    rows = summarise(args, runs)
    print(
        f"\n{args.images} images x {args.size} MB -> {len(args.regions)} regions "
        f"({', '.join(args.regions)}), {args.repeat} run(s), {os.cpu_count()} CPUs\n"
    )
    print(table(rows))
    print()
    print("\n".join(verdicts(args, rows)))
    if args.json:
        payload = {"args": vars(args), "machine": machine(), "rows": rows, "runs": runs}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    failed = [r for r in rows if r["ok"] < r["runs"] and not skipped(r)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
