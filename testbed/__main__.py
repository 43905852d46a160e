"""CLI: ``python -m testbed {install,start,stop,status,server}``.

``start`` leaves the servers running in the background (detached) and exits 0; the
state, credentials and URLs are in ``<workdir>/testbed.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from testbed.core import Testbed
from testbed.errors import TestbedError
from testbed.venv import ensure_venv, is_ready, venv_path


def _summary(info: dict[str, Any]) -> str:
    lines = [f"testbed running (state: {info['workdir']}/testbed.json)"]
    for name, ks in info["keystones"].items():
        admin = ks["admin"]
        lines.append(
            f"  {name}: {ks['url']}  admin/{admin['password']} "
            f"(project admin {ks.get('admin_project_id', '?')}), "
            f"demo/{ks['demo']['password']}"
        )
        for region in ks["regions"]:
            reg = info["regions"][region]
            master = "  [master]" if reg["master"] else ""
            lines.append(f"    {region:<8} glance {reg['glance_url']}{master}")
    tls = info.get("tls", {})
    for name, url in tls.get("urls", {}).items():
        lines.append(f"  TLS front of {name}: {url} (internal endpoint)")
    if tls:
        lines.append(f"  CA: {tls['ca']}; clients: clouds.yaml, openrc, openrc-appcred")
    lines.append(f"  logs: {info['workdir']}/logs/   venv: {info['venv']}")
    return "\n".join(lines)


def cmd_install(args: argparse.Namespace) -> int:
    path = venv_path()
    if is_ready(path):
        print(f"testbed venv already installed: {path}")
        return 0
    print(f"installing keystone and glance into {path} (about 2 minutes) ...", flush=True)
    t0 = time.monotonic()
    ensure_venv()
    print(f"done in {time.monotonic() - t0:.0f}s")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    tb = Testbed(args.workdir, threads=args.threads)
    if not is_ready(venv_path()):
        print(
            f"installing the testbed venv into {venv_path()} first (about 2 minutes) ...",
            flush=True,
        )
    print("starting keystone x2 and glance x4 ...", flush=True)
    extra = tuple(r for r in args.extra_regions.split(",") if r)
    multi = tuple(r for r in args.multi_store.split(",") if r)
    info = tb.start(token_expiration=args.token_expiration, extra_regions=extra, multi_store=multi)
    print(_summary(info))
    if "start_seconds" in info:
        print(f"  started in {info['start_seconds']}s")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    tb = Testbed(args.workdir)
    if not tb.servers:
        print(f"no testbed state in {args.workdir}; nothing to stop")
        return 0
    tb.stop()
    print("testbed stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    tb = Testbed(args.workdir)
    if not tb.servers:
        print(f"no testbed state in {args.workdir}")
        return 3
    status = tb.status()
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        for name, st in status.items():
            state = "up" if st["answers"] else ("running, not answering" if st["alive"] else "down")
            print(f"{name:<15} {st['url']:<24} pid {st['pid'] or '-':<8} {state}")
    return 0 if all(st["answers"] for st in status.values()) else 1


def cmd_server(args: argparse.Namespace) -> int:
    tb = Testbed(args.workdir)
    action = {"start": tb.start_server, "stop": tb.stop_server, "kill": tb.kill_server}
    action[args.action](args.name)
    print(f"{args.name}: {args.action} done")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="create the Keystone/Glance venv only").set_defaults(
        func=cmd_install
    )

    start = sub.add_parser("start", help="start all servers in the background")
    start.add_argument("--workdir", required=True)
    start.add_argument(
        "--token-expiration",
        type=int,
        default=3600,
        help="keystone [token] expiration in seconds (default 3600)",
    )
    start.add_argument("--threads", type=int, default=8, help="gunicorn threads per server")
    start.add_argument(
        "--extra-regions",
        default="",
        help="more regions of keystone-1, comma-separated (e.g. Ourense for bench/server_side.py)",
    )
    start.add_argument(
        "--multi-store",
        default="",
        help="comma-separated regions whose Glance has the file stores fast (default) and "
        "slow (the integration tests give Lannion them)",
    )
    start.set_defaults(func=cmd_start)

    for name, func, text in (
        ("stop", cmd_stop, "stop all servers"),
        ("status", cmd_status, "show which servers answer"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--workdir", required=True)
        if name == "status":
            p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    server = sub.add_parser("server", help="start/stop/kill one server (fault injection)")
    server.add_argument("action", choices=["start", "stop", "kill"])
    server.add_argument("name", help="e.g. glance-Trento, keystone-1")
    server.add_argument("--workdir", required=True)
    server.set_defaults(func=cmd_server)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except TestbedError as exc:
        print(f"testbed: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("testbed: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
