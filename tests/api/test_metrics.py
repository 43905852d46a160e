"""GET /metrics (issue 16, item 2) in one process, with the CSV mock backend.

The multiprocess mode under gunicorn is tested in tests/integration/test_ui_browser.py.
"""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.fakes import ADMIN, KEYSTONE_DOWN, REJECTED_CREDENTIALS
from tests.support.service_app import wait_for_task

AUTH = {"X-Auth-Token": ADMIN}


@pytest.fixture
def plain(app: Flask) -> FlaskClient:
    app.test_client_class = FlaskClient  # /metrics is text, not in the OpenAPI document
    return app.test_client()


def scrape(client: FlaskClient, headers: dict | None = None) -> dict[tuple, float]:
    answer = client.get("/metrics", headers=headers or {})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.content_type.startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, *sorted(labels.items())), 0.0)


def test_metrics_are_open_without_a_token(plain):
    samples = scrape(plain)
    assert value(samples, "glancesync_tasks", state="syncing") == 0


def test_metrics_token_is_a_bearer_token(app, plain):
    settings = app.config["SETTINGS"]
    app.config["SETTINGS"] = dataclasses.replace(settings, metrics_token="scrape-me")
    refused = plain.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert plain.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert plain.get("/metrics", headers={"X-Auth-Token": ADMIN}).status_code == 401
    scrape(plain, {"Authorization": "Bearer scrape-me"})


def test_a_sync_is_counted(plain):
    before = scrape(plain)
    answer = plain.post("/v1/regions/Burgos/tasks", headers=AUTH)
    task = wait_for_task(plain, answer.headers["Location"], AUTH)
    assert task["status"] == "synced", task
    after = scrape(plain)
    assert value(after, "glancesync_tasks", state="synced") == 1
    assert value(after, "glancesync_tasks", state="syncing") == 0
    key = {"region": "Burgos", "status": "synced"}
    assert value(after, "glancesync_sync_duration_seconds_count", **key) == (
        value(before, "glancesync_sync_duration_seconds_count", **key) + 1
    )
    assert value(after, "glancesync_tasks_ended_total", **key) == (
        value(before, "glancesync_tasks_ended_total", **key) + 1
    )
    uploaded = sum(i["bytesDone"] for i in (task["progress"] or {"images": []})["images"])
    moved = value(after, "glancesync_transferred_bytes_total", region="Burgos", target="master")
    moved -= value(before, "glancesync_transferred_bytes_total", region="Burgos", target="master")
    assert uploaded == 20971520  # img02 uploaded by the mock
    assert moved == uploaded
    # The statuses after the sync: img01 and img02 ok, img03 still a checksum conflict.
    assert value(after, "glancesync_images", region="Burgos", status="ok") == 2
    assert value(after, "glancesync_images", region="Burgos", status="error_checksum") == 1
    assert value(after, "glancesync_images", region="Burgos", status="pending_upload") == 0


def test_a_status_read_sets_the_images_gauge(plain):
    answer = plain.get("/v1/regions/other:Madrid/images", headers=AUTH)
    assert answer.status_code == 200
    statuses = [image["status"] for image in answer.get_json()["images"]]
    samples = scrape(plain)
    for status in set(statuses):
        assert value(samples, "glancesync_images", region="other:Madrid", status=status) == (
            statuses.count(status)
        )


def test_keystone_and_glance_errors_by_kind(plain):
    before = scrape(plain)
    assert (
        plain.get("/v1/regions/Burgos/images", headers={"X-Auth-Token": KEYSTONE_DOWN}).status_code
        == 503
    )
    assert plain.get("/v1/regions/Caceres/images", headers=AUTH).status_code == 503
    after = scrape(plain)
    name = "glancesync_keystone_errors_total"
    assert value(after, name, kind="unreachable") == value(before, name, kind="unreachable") + 1
    name = "glancesync_glance_errors_total"
    caceres = [k for k in after if k[0] == name and ("region", "Caceres") in k]
    assert sum(after[k] for k in caceres) == sum(before.get(k, 0) for k in caceres) + 1


def test_errors_are_labelled_by_their_kind_not_their_text(plain):
    from app.metrics import record_backend_error
    from glancesync.errors import BackendError, ErrorKind

    before = scrape(plain)
    # English that the old text parser read as a timeout: an image called timeout-test
    missing = "Lugo: Update of timeout-test failed. Cause: HTTP 404 Not Found"
    record_backend_error("Lugo", BackendError(missing, ErrorKind.NOT_FOUND))
    record_backend_error("Lugo", BackendError("Lugo: anything", ErrorKind.CONTENT))
    record_backend_error("Lugo", BackendError("master: x", ErrorKind.REGION_LIST))
    record_backend_error("Lugo", BackendError("cancelled", ErrorKind.CANCELLED))
    after = scrape(plain)
    glance = "glancesync_glance_errors_total"
    for kind, added in (("not_found", 1), ("content", 1), ("timeout", 0), ("cancelled", 0)):
        assert value(after, glance, region="Lugo", kind=kind) == (
            value(before, glance, region="Lugo", kind=kind) + added
        ), kind
    keystone = "glancesync_keystone_errors_total"
    assert value(after, keystone, kind="region_list") == (
        value(before, keystone, kind="region_list") + 1
    )


def test_every_error_kind_is_a_documented_label(repo_root):
    from glancesync.errors import ErrorKind

    text = (repo_root / "docs" / "monitoring.md").read_text()
    documented = {row for row in text.splitlines() if "_errors_total` | counter" in row}
    labels = " ".join(documented)
    missing = [k.value for k in ErrorKind if k is not ErrorKind.CANCELLED]
    assert [k for k in missing if f"`{k}`" not in labels] == []


def test_rejected_service_credentials_are_their_own_kind(plain):
    before = scrape(plain)
    rejected = {"X-Auth-Token": REJECTED_CREDENTIALS}
    assert plain.get("/v1/regions/Burgos/images", headers=rejected).status_code == 503
    after = scrape(plain)
    name = "glancesync_keystone_errors_total"
    for kind, added in (("service_credentials", 1), ("unreachable", 0)):
        assert value(after, name, kind=kind) == value(before, name, kind=kind) + added, kind


def test_a_late_progress_report_is_not_counted_twice():
    """The heartbeat thread may report a task's progress after the task ended."""
    from app.metrics import metrics, record_progress, record_sync_end

    progress = {"images": [{"region": "Late", "bytesDone": 700}], "bytesTotal": 700}
    counter = metrics().transferred.labels("Late", "master")
    before = counter._value.get()
    record_progress("late-task", {"images": [{"region": "Late", "bytesDone": 300}]})
    record_sync_end("late-task", "Late", "synced", 1.0, progress, [])
    record_progress("late-task", progress)
    assert counter._value.get() - before == 700


def test_the_dashboard_and_alerts_use_metrics_the_service_serves(plain, repo_root):
    """docs/grafana-dashboard.json and docs/prometheus-alerts.yml name real metrics."""
    import json
    import re

    answer = plain.post("/v1/regions/Burgos/tasks", headers=AUTH)
    wait_for_task(plain, answer.headers["Location"], AUTH)
    served = {name for name, *_ in scrape(plain)}
    text = plain.get("/metrics").get_data(as_text=True)
    served |= set(re.findall(r"^# TYPE (\S+) counter$", text, re.M))  # none counted yet
    served |= {name + "_total" for name in served}
    dashboard = json.loads((repo_root / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs.append((repo_root / "docs" / "prometheus-alerts.yml").read_text())
    used = {name for expr in exprs for name in re.findall(r"glancesync_[a-z_]+", expr)}
    assert used and used <= served, used - served


def test_a_worker_serves_its_own_metrics_on_its_port(app):
    """``[celery] METRICS_PORT``: a Celery worker on another host is scraped directly; its
    transferred bytes are in its own process. Only /metrics, with the same token rule."""
    import urllib.error
    import urllib.request

    from app.metrics import record_progress, serve_worker_metrics

    settings = app.config["SETTINGS"]
    app.config["SETTINGS"] = dataclasses.replace(settings, metrics_token="scrape-me")
    server = serve_worker_metrics(app, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        progress = {"images": [{"region": "Burgos", "name": "img02", "bytesDone": 4096}]}
        record_progress("worker-task", progress)
        request = urllib.request.Request(
            f"{base}/metrics", headers={"Authorization": "Bearer scrape-me"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read().decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        sent = {
            s.labels["region"]: s.value
            for s in families["glancesync_transferred_bytes"].samples
            if s.name.endswith("_total")
        }
        assert sent.get("Burgos", 0) >= 4096
        for path, headers, code in [("/metrics", {}, 401), ("/v1/regions", {}, 404)]:
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(
                    urllib.request.Request(f"{base}{path}", headers=headers), timeout=10
                )
            assert refused.value.code == code
    finally:
        server.shutdown()


def test_metrics_port_setting(tmp_path):
    from app.settings import SettingsError, read_settings
    from tests.support.settings_files import MINIMAL, write

    text = MINIMAL + "\n[celery]\nBROKER_URL = redis://127.0.0.1:6379/11\nMETRICS_PORT = 9464\n"
    assert read_settings(write(tmp_path, text), "logging.cfg").celery.metrics_port == 9464
    with pytest.raises(SettingsError, match="METRICS_PORT in section \\[celery\\]"):
        read_settings(write(tmp_path, text.replace("9464", "70000")), "logging.cfg")
