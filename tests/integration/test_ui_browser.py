"""The web page in a real browser, and /metrics under gunicorn (issue 16, items 2 and 3).

Debian's Chromium, driven by Selenium, talks to ``manage.py gunicornserver`` (2 workers,
PostgreSQL) validating real Keystone tokens and syncing the testbed's Glance servers.
The target Glance is slowed down by freezing and thawing it in turns (SIGSTOP/SIGCONT):
a sync then lasts long enough to watch its progress and to cancel it, whatever the
machine's speed.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from fixtures_glance import MASTER, config_text, wipe_all
from prometheus_client.parser import text_string_to_metric_families
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from service_process import ServiceProcess

from demo.browser import chromium, sign_in

pytestmark = pytest.mark.integration

MB = 1048576
SIZES = (2048, 6144, 12 * MB)  # the big one keeps a throttled sync running for seconds
FLASK_CONFIG = "PROGRESS_INTERVAL = 0.2\nUI_POLL_INTERVAL = 0.3\n"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def seeds(tb_info, glance) -> Iterator[dict[str, int]]:
    """Empty regions, then public images in the master region: name -> size."""
    wipe_all(tb_info, glance)
    client = glance(MASTER)
    tag = uuid.uuid4().hex[:6]
    made = {}
    for index, size in enumerate(SIZES):
        record = client.images.create(
            name=f"ui-{tag}-{index}",
            visibility="public",
            disk_format="raw",
            container_format="bare",
        )
        client.images.upload(record["id"], io.BytesIO(os.urandom(size)), image_size=size)
        made[record["name"]] = size
    yield made
    wipe_all(tb_info, glance)


@pytest.fixture(scope="module")
def service(tb_info, seeds, tmp_path_factory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("ui-service")
    images = folder / "images"
    images.mkdir()
    svc = ServiceProcess(tb_info, folder, images, workers=2)
    # A second target (keystone-2, region Madrid), for the target filter.
    (folder / "glancesync.conf").write_text(config_text(tb_info, images, other=""))
    flask_config = folder / "flask_config.py"
    flask_config.write_text(FLASK_CONFIG)
    svc.environ["GLANCESYNCAPP_CONFIG"] = str(flask_config)
    with svc.running():
        yield svc


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    browser = chromium()
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def throttle(testbed) -> Iterator[Callable[[str], Callable[[], None]]]:
    """Factory: slow a Glance server down until the returned function is called."""
    stops: list[Callable[[], None]] = []

    def start(region: str) -> Callable[[], None]:
        name = f"glance-{region}"
        done = threading.Event()

        def run() -> None:
            while not done.is_set():
                testbed.freeze_server(name)
                done.wait(0.25)
                testbed.thaw_server(name)
                time.sleep(0.03)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()

        def stop() -> None:
            done.set()
            thread.join()
            testbed.thaw_server(name)

        stops.append(stop)
        return stop

    yield start
    for stop in stops:
        stop()


# --------------------------------------------------------------------------- helpers


def admin_of(tb_info) -> dict[str, str]:
    return tb_info["keystones"]["keystone-1"]["admin"]


def signed_in(driver, service: ServiceProcess, creds: dict[str, str]) -> None:
    driver.delete_all_cookies()
    sign_in(driver, service.url, creds)
    wait(driver, 20).until(lambda d: d.current_url == service.url + "/ui/")


def wait(driver, seconds: float) -> WebDriverWait:
    return WebDriverWait(driver, seconds, poll_frequency=0.1)


def cells(driver, region: str) -> dict[str, str]:
    """image name -> status word of the region's column (read in one go: the script
    replaces the table as it refreshes)."""
    return driver.execute_script(
        """
        const out = {};
        for (const row of document.querySelectorAll('#matrix tbody tr')) {
          const td = [...row.querySelectorAll('td')].find(c => c.dataset.region === arguments[0]);
          if (td) out[row.dataset.image] = td.textContent;
        }
        return out;
        """,
        region,
    )


def newest_task(driver, region: str) -> dict | None:
    return driver.execute_script(
        """
        const box = [...document.querySelectorAll('.region-tasks')]
          .find(b => b.dataset.region === arguments[0]);
        const li = box && box.querySelector('li.task');
        if (!li) return null;
        const bar = li.querySelector('.progress');
        return {id: li.dataset.task, status: li.dataset.status, text: li.textContent,
                done: bar ? Number(bar.dataset.done) : null,
                total: bar ? Number(bar.dataset.total) : null};
        """,
        region,
    )


def click_and_confirm(driver, button) -> None:
    button.click()
    alert = wait(driver, 5).until(expected_conditions.alert_is_present())
    alert.accept()


def sync_button(driver, region: str):
    return driver.find_element(By.CSS_SELECTOR, f'button.sync-now[data-region="{region}"]')


def scrape(service: ServiceProcess) -> dict[tuple, float]:
    answer = requests.get(service.url + "/metrics", timeout=20)
    assert answer.status_code == 200, answer.text
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, *sorted(labels.items())), 0.0)


def scrapes_agree(service: ServiceProcess, count: int = 6) -> dict[tuple, float]:
    """Several scrapes (gunicorn spreads them over both workers) give the same counters."""
    keep = ("glancesync_transferred", "glancesync_sync_duration_seconds_count", "glancesync_tasks")
    first = None
    for _ in range(count):
        samples = {k: v for k, v in scrape(service).items() if k[0].startswith(keep)}
        assert first is None or samples == first
        first = samples
    return first


# --------------------------------------------------------------------------- tests


def test_wrong_password_shows_an_error(driver, service, tb_info):
    creds = {**admin_of(tb_info), "password": "not-the-password"}
    driver.delete_all_cookies()
    sign_in(driver, service.url, creds)
    error = wait(driver, 20).until(lambda d: d.find_element(By.ID, "signin-error"))
    assert "Wrong user name, password, project or domain" in error.text
    assert driver.current_url == service.url + "/ui/signin"
    driver.get(service.url + "/ui/")
    assert driver.current_url == service.url + "/ui/signin"  # still signed out


def test_sync_from_the_page_with_live_progress_and_metrics(
    driver, service, tb_info, seeds, throttle
):
    signed_in(driver, service, admin_of(tb_info))
    wait(driver, 30).until(lambda d: len(cells(d, "Trento")) == len(seeds))
    assert set(cells(driver, "Trento").values()) == {"pending_upload"}
    assert set(cells(driver, "Lannion").values()) == {"pending_upload"}
    counts = driver.find_element(By.CSS_SELECTOR, '#counts th[data-region="Trento"]').text
    assert counts == f"0 / {len(seeds)} / 0"
    title = driver.find_element(By.CSS_SELECTOR, '#matrix td[data-region="Trento"]')
    assert "a sync would: upload the image" in title.get_attribute("title")

    stop = throttle("Trento")
    click_and_confirm(driver, sync_button(driver, "Trento"))
    total = sum(seeds.values())

    def partway(d) -> dict | None:
        task = newest_task(d, "Trento")
        ok = task and task["status"] == "syncing" and task["done"] and task["done"] < total
        return task if ok else None

    task = wait(driver, 60).until(partway)
    assert task["total"] == total
    assert re.search(r"of 12\.\d MiB \(\d+%\), [\d.]+ \S+/s", task["text"]), task["text"]
    during = scrape(service)
    assert value(during, "glancesync_tasks", state="syncing") == 1
    moved = value(during, "glancesync_transferred_bytes_total", region="Trento", target="master")
    assert moved <= total
    stop()

    wait(driver, 120).until(lambda d: newest_task(d, "Trento")["status"] != "syncing")
    assert newest_task(driver, "Trento")["status"] == "synced"
    wait(driver, 30).until(lambda d: set(cells(d, "Trento").values()) == {"ok"})
    assert set(cells(driver, "Lannion").values()) == {"pending_upload"}

    after = scrapes_agree(service)
    assert value(after, "glancesync_tasks", state="synced") == 1
    assert value(after, "glancesync_tasks", state="syncing") == 0
    assert value(after, "glancesync_transferred_bytes_total", region="Trento", target="master") == (
        total
    )
    duration = "glancesync_sync_duration_seconds_count"
    assert value(after, duration, region="Trento", status="synced") == 1
    assert value(scrape(service), "glancesync_images", region="Trento", status="ok") == len(seeds)


def test_cancel_a_running_sync(driver, service, tb_info, seeds, throttle):
    signed_in(driver, service, admin_of(tb_info))
    wait(driver, 30).until(lambda d: len(cells(d, "Lannion")) == len(seeds))
    stop = throttle("Lannion")
    click_and_confirm(driver, sync_button(driver, "Lannion"))

    def running(d) -> bool:
        task = newest_task(d, "Lannion")
        return bool(task and task["status"] == "syncing" and task["done"])

    wait(driver, 60).until(running)
    button = driver.find_element(By.CSS_SELECTOR, '.region-tasks[data-region="Lannion"] .cancel')
    click_and_confirm(driver, button)
    wait(driver, 60).until(lambda d: newest_task(d, "Lannion")["status"] != "syncing")
    stop()
    task = newest_task(driver, "Lannion")
    assert task["status"] == "failed" and "cancelled" in task["text"], task
    wait(driver, 30).until(lambda d: "pending_upload" in cells(d, "Lannion").values())
    samples = scrape(service)
    assert value(samples, "glancesync_tasks", state="failed") == 1


def test_a_viewer_sees_the_page_without_the_sync_button(driver, service, tb_info, seeds):
    # a reader of the master's project (the testbed gives demo that role): view only
    demo = tb_info["keystones"]["keystone-1"]["demo"]
    signed_in(driver, service, {**demo, "project_name": "admin"})
    assert "demo (read-only)" in driver.find_element(By.ID, "who").text
    wait(driver, 30).until(lambda d: len(cells(d, "Trento")) == len(seeds))
    wait(driver, 10).until(lambda d: newest_task(d, "Trento") is not None)
    assert driver.find_elements(By.CSS_SELECTOR, "button.sync-now") == []
    assert driver.find_elements(By.CSS_SELECTOR, "button.cancel") == []


def test_filters_by_name_status_and_target(driver, service, tb_info, seeds):
    signed_in(driver, service, admin_of(tb_info))
    wait(driver, 30).until(lambda d: len(cells(d, "Trento")) == len(seeds))
    visible = (
        "return [...document.querySelectorAll('#matrix tbody tr')]"
        ".filter(r => !r.hidden).map(r => r.dataset.image)"
    )
    name = sorted(seeds)[0]
    driver.find_element(By.ID, "filter-name").send_keys(name)
    assert driver.execute_script(visible) == [name]
    driver.find_element(By.ID, "filter-name").clear()
    driver.execute_script(
        "const s = document.getElementById('filter-status'); s.value = 'error';"
        "s.dispatchEvent(new Event('input'));"
    )
    assert driver.execute_script(visible) == []
    driver.execute_script(
        "const s = document.getElementById('filter-status'); s.value = 'pending';"
        "s.dispatchEvent(new Event('input'));"
    )
    assert len(driver.execute_script(visible)) == len(seeds)  # Lannion still pending
    driver.execute_script(
        "const s = document.getElementById('filter-target'); s.value = 'other';"
        "s.dispatchEvent(new Event('input'));"
    )
    shown = (
        "return [...document.querySelectorAll('#matrix thead th.region')]"
        ".filter(th => !th.hidden).map(th => th.dataset.region)"
    )
    assert driver.execute_script(shown) == ["other:Madrid"]


def test_no_password_is_logged(service, tb_info):
    """Sign-in sends passwords to Keystone: none of them reaches the service's logs."""
    keystone = tb_info["keystones"]["keystone-1"]
    service.assert_no_secret_logged([keystone["demo"]["password"], "not-the-password"])
