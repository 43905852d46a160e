"""Benchmark: propagation latency of ``manage.py listen`` beside the hand-synced transfer time.

Run: ``python bench/propagation.py [--size 200] [--repeat 1] [--quiet 2]
[--workdir /tmp/tb-propagation] [--keep] [--json FILE]``.

On the local testbed (real Keystone + Glance, the master's notifications on the testbed's
RabbitMQ vhost), per repeat:

1. hand: a fresh S MB image in the master, the listener not running; then the regions
   are synced "by hand", one ``sync_region`` per region at the same time (what one POST
   per region does in the service): ``transfer s`` is that wall time;
2. automatic: the region copies and the master image deleted, ``manage.py listen``
   running; another fresh S MB image uploaded to the master: ``latency s`` runs from the
   moment the master's upload returns (the image is active) to the moment every region
   holds an active copy with the master's checksum, polled every 0.2 s. Nobody calls
   anything in between.

Target (issue 17): latency <= transfer + QUIET + 3 s. Regions: Trento, Lannion
(keystone-1) and other:Madrid (keystone-2). Not a test: pytest never collects it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(REPO)]

from peers import ChunkReader, glance  # noqa: E402

from testbed import Testbed, broker  # noqa: E402
from testbed.clients import session_for  # noqa: E402

MIB = 1024 * 1024
MASTER = "Spain2"
PREFIX = "prop-"
REGIONS = {"Trento": "keystone-1", "Lannion": "keystone-1", "Madrid": "keystone-2"}
FULL = {"Trento": "Trento", "Lannion": "Lannion", "Madrid": "other:Madrid"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=200, help="S MiB (default 200)")
    parser.add_argument("--repeat", type=int, default=1, help="runs (default 1)")
    parser.add_argument("--quiet", type=float, default=2.0, help="[notifications] QUIET")
    parser.add_argument("--workdir", default="/tmp/tb-propagation", help="testbed folder")
    parser.add_argument("--keep", action="store_true", help="leave the testbed running")
    parser.add_argument("--json", help="write the results to this file")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- files


def core_config(info: dict[str, Any], images_dir: Path) -> str:
    def credential(name: str) -> str:
        ks = info["keystones"][name]
        return (
            f"user = {ks['admin']['username']}\npassword = {ks['admin']['password']}\n"
            f"keystone_url = {ks['url'].removesuffix('/v3')}\n"
            f"tenant = {ks['admin']['project_name']}\n"
        )

    return (
        f"[main]\nmaster_region = {MASTER}\nimages_dir = {images_dir}\n\n"
        f"[master]\n{credential('keystone-1')}\n[other]\n{credential('keystone-2')}"
    )


def write_files(info: dict[str, Any], rundir: Path, quiet: float) -> dict[str, str]:
    admin = info["keystones"]["keystone-1"]["admin"]
    settings = rundir / "fiware-glancesync.cfg"
    settings.write_text(
        f"[openstack]\nKEYSTONE_URL = {info['keystones']['keystone-1']['url']}\n"
        f"ADM_USER = {admin['username']}\nADM_PASS = {admin['password']}\n"
        f"ADM_TENANT_NAME = {admin['project_name']}\n\n"
        f"[database]\nURL = sqlite:///{rundir / 'glancesyncapi.db'}\n\n"
        f"[notifications]\nTRANSPORT_URL = {info['notifications']['transport_url']}\n"
        f"QUIET = {quiet}\n\n[schedule]\nREGIONS = master: other:\n"
    )
    core = rundir / "glancesync.conf"
    core.write_text(core_config(info, rundir / "no-local-images"))
    for path in (settings, core):
        path.chmod(0o600)
    return {
        **os.environ,
        "GLANCESYNC_SETTINGS_FILE": str(settings),
        "GLANCESYNC_LOGGING_SETTINGS_FILE": str(REPO / "fiware-glancesync-logging.cfg"),
        "GLANCESYNC_CONFIG": str(core),
    }


def manage(env: dict[str, str], rundir: Path, *args: str) -> subprocess.Popen:
    out = open(rundir / "listen.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=rundir,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def start_listener(env: dict[str, str], rundir: Path) -> subprocess.Popen:
    log = rundir / "glancesync-api.log"
    mark = log.read_text(errors="replace").count("Listening to the master") if log.exists() else 0
    proc = manage(env, rundir, "listen")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(errors="replace").count("Listening to the master") > mark:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the listener did not start; see {rundir}/listen.log")


def stop_listener(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


# ---------------------------------------------------------------- images


def random_chunks(size: int):
    left = size
    while left > 0:
        chunk = os.urandom(min(MIB, left))
        left -= len(chunk)
        yield chunk


def upload(client: Any, size_mib: int) -> dict[str, Any]:
    """A public master image; returns once Glance answered the upload (image active)."""
    size = size_mib * MIB
    made = client.images.create(
        name=f"{PREFIX}{time.strftime('%H%M%S')}",
        visibility="public",
        disk_format="raw",
        container_format="bare",
    )
    client.images.upload(made["id"], ChunkReader(random_chunks(size)), image_size=size)
    return dict(client.images.get(made["id"]))


def delete_named(clients: dict[str, Any]) -> None:
    for client in clients.values():
        for image in list(client.images.list()):
            if image["name"].startswith(PREFIX):
                client.images.delete(image["id"])


def everywhere(clients: dict[str, Any], master: dict[str, Any]) -> bool:
    for region in REGIONS:
        copies = [
            image
            for image in clients[region].images.list()
            if image["name"] == master["name"] and image["status"] == "active"
        ]
        if not any(image["checksum"] == master["checksum"] for image in copies):
            return False
    return True


# ---------------------------------------------------------------- runs


def hand_sync(env: dict[str, str]) -> float:
    """One sync_region per region, at the same time, in this process, after the logins."""
    from glancesync.config import load_config
    from glancesync.engine import GlanceSync

    config = load_config(environ={"GLANCESYNC_CONFIG": env["GLANCESYNC_CONFIG"]})
    gs = GlanceSync(config)
    gs.known_regions()  # tokens and catalogs first: the listener's are warm too
    t0 = time.monotonic()
    with ThreadPoolExecutor(len(REGIONS)) as pool:
        results = list(pool.map(gs.sync_region, FULL.values()))
    elapsed = time.monotonic() - t0
    failed = [r for r in results if r.to_dict()["failed"]]
    if failed:
        raise SystemExit(f"hand sync failed: {failed}")
    return elapsed


def one_run(args, clients, env, rundir, vhost) -> dict[str, float]:
    delete_named(clients)
    master = upload(clients[MASTER], args.size)
    broker.purge(vhost)  # no listener now: these events would only be a backlog
    transfer = hand_sync(env)
    assert everywhere(clients, master)
    delete_named(clients)
    broker.purge(vhost)
    listener = start_listener(env, rundir)
    try:
        master = upload(clients[MASTER], args.size)
        active = time.monotonic()
        while not everywhere(clients, master):
            if time.monotonic() - active > 600:
                raise SystemExit("the image did not reach every region within 10 minutes")
            time.sleep(0.2)
        latency = time.monotonic() - active
    finally:
        stop_listener(listener)
    delete_named(clients)
    return {"transfer_s": round(transfer, 2), "latency_s": round(latency, 2)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    tb = Testbed(args.workdir)
    started = not tb.running()
    if started:
        tb.start()
    rundir = Path(args.workdir) / f"propagation-{time.strftime('%Y%m%d-%H%M%S')}"
    rundir.mkdir(parents=True)
    env = write_files(tb.info, rundir, args.quiet)
    subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "db", "upgrade"],
        cwd=rundir,
        env=env,
        check=True,
        capture_output=True,
    )
    sessions = {ks: session_for(tb.info, ks, "admin") for ks in ("keystone-1", "keystone-2")}
    clients = {MASTER: glance(sessions["keystone-1"], MASTER)}
    clients.update({r: glance(sessions[ks], r) for r, ks in REGIONS.items()})
    runs = []
    try:
        for k in range(args.repeat):
            runs.append(one_run(args, clients, env, rundir, tb.info["notifications"]["vhost"]))
            print(f"run {k + 1}: {runs[-1]}", flush=True)
    finally:
        if started and not args.keep:
            tb.stop()
    transfer = statistics.median(r["transfer_s"] for r in runs)
    latency = statistics.median(r["latency_s"] for r in runs)
    target = transfer + args.quiet + 3
    summary = {
        "size_mib": args.size,
        "regions": list(FULL.values()),
        "quiet_s": args.quiet,
        "runs": runs,
        "transfer_s": transfer,
        "latency_s": latency,
        "target_s": round(target, 2),
        "overhead_s": round(latency - transfer, 2),
        "met": latency <= target,
    }
    print(
        f"| {args.size} MiB -> {len(FULL)} regions | hand transfer {transfer:.1f} s "
        f"| propagation {latency:.1f} s | target <= {target:.1f} s | "
        f"{'met' if summary['met'] else 'MISSED'} |"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
