"""Concurrency of the real service (gunicorn, 2 workers, PostgreSQL) and its token cache.

The figures (requests/s, latencies) come from ``bench/load.py``; these tests only check
what must hold under load: one running task per region whatever the race, no error, and
one Keystone validation per distinct token per worker process.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from service_process import CountingProxy, ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_glance")]

WORKERS = 2
POSTS = 200
CLIENT_THREADS = 50


@pytest.fixture
def proxy(tb_info):
    keystone = CountingProxy(tb_info["keystones"]["keystone-1"]["url"].removesuffix("/v3"))
    yield keystone
    keystone.close()


@pytest.fixture
def service(tb_info, images_dir, tmp_path: Path, proxy: CountingProxy):
    process = ServiceProcess(
        tb_info, tmp_path / "service", images_dir, WORKERS, keystone_url=proxy.url + "/v3"
    )
    with process.running():
        yield process


def test_200_concurrent_posts_create_one_task(service, os_session, proxy, testbed):
    """Trento is frozen so the sync lasts the whole storm: a finished task would
    (rightly) let the next POST start a new one."""
    tokens = [os_session("keystone-1").get_token() for _ in range(3)]
    testbed.freeze_server("glance-Trento")
    try:
        answers = post_storm(service, tokens)
    finally:
        testbed.thaw_server("glance-Trento")
    codes = Counter(code for code, _ in answers)
    assert codes == {202: 1, 200: POSTS - 1}, codes
    assert len({task_id for _, task_id in answers}) == 1
    assert service.count_tasks() == 1
    for token in tokens:  # cached per worker process: at most one call per worker
        assert 1 <= proxy.validations.get(token, 0) <= WORKERS, proxy.validations


def post_storm(service: ServiceProcess, tokens: list[str]) -> list[tuple[int, str]]:
    """POSTS requests from CLIENT_THREADS threads, the first wave released together."""
    barrier = threading.Barrier(CLIENT_THREADS)

    def post(index: int) -> tuple[int, str]:
        if index < CLIENT_THREADS:
            barrier.wait()  # the first wave leaves together: a real race
        response = service.post("/v1/regions/Trento/tasks", tokens[index % len(tokens)])
        return response.status_code, response.json()["taskId"]

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        return list(pool.map(post, range(POSTS)))


def test_sustained_status_reads_without_error(service, os_session, proxy):
    token = os_session("keystone-1").get_token()
    location = service.post("/v1/regions/Trento/tasks", token).headers["Location"]

    def read(_: int) -> int:
        return service.get(location, token).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = Counter(pool.map(read, range(600)))
    assert codes == {200: 600}, codes
    assert 1 <= proxy.validations[token] <= WORKERS
