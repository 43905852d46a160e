"""Benchmark: the REST service under load (issue 6). A benchmark, not a test.

Runs the real service (``manage.py gunicornserver``, W workers, PostgreSQL) against the
local testbed, behind a counting proxy in front of Keystone, then:

1. 200 concurrent ``POST /v1/regions/Trento/tasks`` from 50 client threads (Trento frozen
   so the sync lasts the whole storm): how many tasks were created (must be 1);
2. sustained ``GET /v1/regions/Trento/tasks/<id>`` for D seconds from C client threads
   with keep-alive, each thread cycling over T distinct tokens: requests/s, p50/p90/p99
   latency, errors;
3. the token validations Keystone received (``GET /v3/auth/tokens`` through the proxy),
   per distinct token, against the ceiling "one per token per worker process".

Run: ``python bench/load.py [--workers 2] [--clients 8] [--seconds 10] [--tokens 4]
[--workdir /tmp/tb-bench] [--json out.json]``. The testbed in ``--workdir`` is reused if
it runs, else started (stopped at the end only if this run started it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "integration")]

from service_process import CountingProxy, ServiceProcess  # noqa: E402

from testbed import Testbed  # noqa: E402
from testbed.clients import session_for  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def admin_tokens(tb_info: dict[str, Any], count: int) -> list[str]:
    return [session_for(tb_info).get_token() for _ in range(count)]


def post_storm(service: ServiceProcess, tokens: list[str], posts: int = 200) -> dict[str, Any]:
    barrier = threading.Barrier(50)

    def post(index: int) -> tuple[int, str]:
        if index < 50:
            barrier.wait()
        response = service.post("/v1/regions/Trento/tasks", tokens[index % len(tokens)])
        return response.status_code, response.json().get("taskId", "")

    started = time.perf_counter()
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(post, range(posts)))
    return {
        "posts": posts,
        "seconds": round(time.perf_counter() - started, 2),
        "codes": dict(Counter(code for code, _ in answers)),
        "distinct_task_ids": len({task for _, task in answers}),
        "tasks_in_database": service.count_tasks(),
    }


def sustained_gets(
    service: ServiceProcess, location: str, tokens: list[str], clients: int, seconds: float
) -> dict[str, Any]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[Counter] = [Counter() for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        mine, bad = latencies[index], errors[index]
        n = index
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                code = service.get(location, tokens[n % len(tokens)]).status_code
            except Exception as exc:  # noqa: BLE001 - counted, reported
                bad[type(exc).__name__] += 1
                continue
            mine.append(time.perf_counter() - t0)
            if code != 200:
                bad[str(code)] += 1
            n += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    every = [value for values in latencies for value in values]
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": len(every),
        "requests_per_second": round(len(every) / elapsed, 1),
        "p50_ms": round(statistics.median(every) * 1000, 2),
        "p90_ms": round(percentile(every, 0.90) * 1000, 2),
        "p99_ms": round(percentile(every, 0.99) * 1000, 2),
        "max_ms": round(max(every) * 1000, 2),
        "errors": dict(sum(errors, Counter())),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    testbed = Testbed(Path(args.workdir))
    started_here = not testbed.running()
    if started_here:
        testbed.start()
    proxy = CountingProxy(testbed.info["keystones"]["keystone-1"]["url"].removesuffix("/v3"))
    folder = Path(tempfile.mkdtemp(prefix="glancesync-load-"))
    (folder / "images").mkdir()
    service = ServiceProcess(
        testbed.info, folder / "service", folder / "images", args.workers, proxy.url + "/v3"
    )
    try:
        with service.running():
            return measure(testbed, service, proxy, args)
    finally:
        proxy.close()
        if started_here:
            testbed.stop()


def measure(
    testbed: Testbed, service: ServiceProcess, proxy: CountingProxy, args: argparse.Namespace
) -> dict[str, Any]:
    """The POST storm, then sustained GETs of the task it created."""
    tokens = admin_tokens(testbed.info, args.tokens)
    testbed.freeze_server("glance-Trento")
    try:
        storm = post_storm(service, tokens)
    finally:
        testbed.thaw_server("glance-Trento")
    location = f"/v1/regions/Trento/tasks/{latest_task(service)}"
    sustained_gets(service, location, tokens, args.clients, 1.0)  # warm-up
    reads = sustained_gets(service, location, tokens, args.clients, args.seconds)
    validations = {f"token{i}": proxy.validations.get(t, 0) for i, t in enumerate(tokens)}
    return {
        "workers": args.workers,
        "post_storm": storm,
        "sustained_get": reads,
        "keystone_validations": validations,
        "validation_ceiling_per_token": args.workers,
    }


def latest_task(service: ServiceProcess) -> str:
    import psycopg
    from service_process import POSTGRES

    with psycopg.connect(f"{POSTGRES}/{service.database}") as conn:
        return conn.execute("SELECT task_id FROM task ORDER BY id DESC LIMIT 1").fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tokens", type=int, default=4)
    parser.add_argument("--workdir", default="/tmp/tb-bench")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures = run(args)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
