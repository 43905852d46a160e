"""The service's edges (issue 22 item 4): body limit, security headers, request ids,
refused-token cache, sign-in throttling, trusted proxies and cookies, query checks first."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.auth import EXTENSION
from app.ui.sessions import COOKIE, Credentials, SignInRefused
from tests.api.fakes import ADMIN, KEYSTONE_DOWN, NO_ROLE
from tests.support.ui_pages import csrf_of, page_app

AUTH = {"X-Auth-Token": ADMIN}
REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PASSWORDS = {("alice", "alice-pw"): ADMIN, ("nobody", "nobody-pw"): NO_ROLE}


def authenticator(creds: Credentials) -> str:
    token = PASSWORDS.get((creds.user, creds.password))
    if token is None:
        raise SignInRefused("Wrong user name, password, project or domain")
    return token


@pytest.fixture
def ui_app(app_factory) -> Iterator[Flask]:
    with page_app(app_factory, authenticator) as app:
        yield app


def post_signin(browser: FlaskClient, user: str, password: str, **extra):
    token = csrf_of(browser.get("/ui/signin").get_data(as_text=True))
    form = {"user": user, "password": password, "project": "admin", "csrf_token": token}
    return browser.post("/ui/signin", data={**form, **extra}, **{})


# -- body limit -------------------------------------------------------------------------
def test_a_body_over_the_limit_is_a_json_413_on_v1(client):
    body = b"{" + b" " * (1024 * 1024 + 1) + b"}"
    answer = client.post("/v1/tasks", data=body, headers=AUTH, content_type="application/json")
    assert answer.status_code == 413
    assert answer.get_json()["error"]["code"] == 413
    assert len(answer.data) < 1000


def test_a_body_over_the_limit_is_an_html_413_on_the_page(ui_app):
    browser = ui_app.test_client()
    answer = browser.post("/ui/signin", data={"user": "x" * (2 * 1024 * 1024)})
    assert answer.status_code == 413
    assert answer.mimetype == "text/html"
    assert len(answer.data) < 20_000


def test_max_body_setting(app_factory):
    app = app_factory(MAX_BODY=100)
    answer = app.test_client().post(
        "/v1/tasks", data=b"[" + b" " * 200 + b"]", headers=AUTH, content_type="application/json"
    )
    assert answer.status_code == 413


def test_sign_in_fields_are_capped(ui_app):
    browser = ui_app.test_client()
    answer = post_signin(browser, "a" * 300, "alice-pw")
    assert answer.status_code == 400
    assert "a" * 300 not in answer.get_data(as_text=True)


# -- headers on every answer --------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/regions/Burgos/tasks", "/nowhere", "/ui/nowhere", "/"])
def test_security_headers_on_every_answer(ui_app, path):
    answer = ui_app.test_client().get(path, headers=AUTH)
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert REQUEST_ID.match(answer.headers["X-Openstack-Request-Id"])


def test_the_ui_404_is_a_page_with_a_csp(ui_app):
    answer = ui_app.test_client().get("/ui/nowhere")
    assert answer.status_code in (303, 404)
    assert "Content-Security-Policy" in answer.headers


def test_v1_answers_are_never_cached(client):
    for path in ("/v1/regions/Burgos/tasks", "/v1/regions/Nowhere/tasks", "/"):
        assert client.get(path, headers=AUTH).headers["Cache-Control"] == "no-store", path


def test_each_request_has_its_own_id_in_its_log_lines(app, client, caplog):
    caplog.set_level(logging.DEBUG)
    first = client.get("/v1/regions/Burgos/tasks", headers=AUTH)
    second = client.get("/v1/regions/Burgos/tasks", headers=AUTH)
    assert first.headers["X-Openstack-Request-Id"] != second.headers["X-Openstack-Request-Id"]
    with app.test_request_context():
        pass
    from app.logs import ContextFormatter

    formatter = ContextFormatter("%(request_id)s %(message)s")
    answer = client.get("/v1/regions/Burgos/images", headers={"X-Auth-Token": KEYSTONE_DOWN})
    request_id = answer.headers["X-Openstack-Request-Id"]
    lines = [formatter.format(r) for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(line.startswith(request_id) for line in lines), lines


# -- 503s name the component, nothing more ------------------------------------------------
def test_a_keystone_503_names_keystone_only(client):
    answer = client.get("/v1/regions/Burgos/tasks", headers={"X-Auth-Token": KEYSTONE_DOWN})
    assert answer.status_code == 503
    text = answer.get_json()["error"]["description"]
    assert "Keystone" in text
    assert "ConnectFailure" not in text and "http" not in text and "[" not in text


def test_a_glance_503_names_the_region_without_its_url(app, client, monkeypatch):
    from app.regions import Core
    from glancesync.errors import BackendError, ErrorKind

    def broken(self, region):
        raise BackendError(
            "Cannot reach https://glance.burgos.internal:9292/v2 (see [openstack] CACERT)",
            ErrorKind.CONNECTION,
        )

    gs = app.extensions["glancesync.core"].glancesync()
    monkeypatch.setattr(type(gs), "image_report", broken)
    assert Core  # the core's GlanceSync is what the route asks
    answer = client.get("/v1/regions/Burgos/images", headers=AUTH)
    assert answer.status_code == 503
    text = answer.get_json()["error"]["description"]
    assert "Glance" in text and "Burgos" in text
    assert "https" not in text and "internal" not in text and "CACERT" not in text


# -- refused tokens -----------------------------------------------------------------------
def test_a_refused_token_is_remembered_for_a_while(app, client):
    validator = app.extensions[EXTENSION]
    for _ in range(3):
        assert (
            client.get("/v1/regions/Burgos/tasks", headers={"X-Auth-Token": "bad"}).status_code
            == 401
        )
    inner = getattr(validator, "inner", validator)
    assert inner.calls["bad"] == 1


def test_the_refusal_cache_is_bounded_and_short():
    from app.refusals import RefusedTokens

    now = [0.0]
    cache = RefusedTokens(size=2, ttl=10, clock=lambda: now[0])
    for token in ("a", "b", "c"):
        cache.add(token)
    assert not cache.refused("a") and cache.refused("b") and cache.refused("c")
    now[0] = 11
    assert not cache.refused("c")


# -- sign-in ------------------------------------------------------------------------------
def test_one_message_for_a_wrong_password_and_a_missing_role(ui_app):
    wrong = post_signin(ui_app.test_client(), "alice", "nope")
    no_role = post_signin(ui_app.test_client(), "nobody", "nobody-pw")
    assert wrong.status_code == no_role.status_code == 401
    message = re.compile(r'class="error"[^>]*>([^<]*)<')
    assert message.search(wrong.get_data(as_text=True)).group(1) == message.search(
        no_role.get_data(as_text=True)
    ).group(1)
    assert "roles" not in no_role.get_data(as_text=True)


def test_sign_in_is_throttled_per_user(ui_app):
    for attempt in range(5):
        answer = post_signin(ui_app.test_client(), "alice", f"wrong-{attempt}")
        assert answer.status_code == 401
    refused = post_signin(ui_app.test_client(), "alice", "alice-pw")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.mimetype == "text/html"


def test_sign_in_is_throttled_per_address_across_processes(ui_app, app_factory):
    other = app_factory(UI_AUTHENTICATOR=authenticator, UI_REVOKER=lambda token: None)
    other.test_client_class = FlaskClient
    for attempt in range(10):
        app = ui_app if attempt % 2 else other
        post_signin(app.test_client(), f"user-{attempt}", "wrong")
    assert post_signin(ui_app.test_client(), "alice", "alice-pw").status_code == 429


def test_a_good_sign_in_is_not_throttled_by_a_few_mistakes(ui_app):
    for attempt in range(2):
        post_signin(ui_app.test_client(), "alice", f"wrong-{attempt}")
    assert post_signin(ui_app.test_client(), "alice", "alice-pw").status_code == 303


# -- proxies, cookies, HSTS ---------------------------------------------------------------
def test_forwarded_https_is_ignored_without_trusted_proxies(ui_app):
    browser = ui_app.test_client()
    answer = post_signin(browser, "alice", "alice-pw", headers={"X-Forwarded-Proto": "https"})
    assert answer.status_code == 303
    assert "Secure" not in answer.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in answer.headers


def test_one_trusted_proxy_makes_cookies_secure_and_adds_hsts(app_factory):
    app = app_factory(UI_AUTHENTICATOR=authenticator, UI_REVOKER=lambda token: None, PROXY_HOPS=1)
    app.test_client_class = FlaskClient
    browser = app.test_client()
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    token = csrf_of(browser.get("/ui/signin", headers=proxied).get_data(as_text=True))
    answer = browser.post(
        "/ui/signin",
        data={"user": "alice", "password": "alice-pw", "project": "p", "csrf_token": token},
        headers=proxied,
    )
    assert answer.status_code == 303
    assert "Secure" in answer.headers["Set-Cookie"]
    assert "max-age=" in answer.headers["Strict-Transport-Security"]


def test_always_secure_cookies(app_factory):
    app = app_factory(SECURE_COOKIES="always")
    app.test_client_class = FlaskClient
    answer = app.test_client().get("/ui/signin")
    assert "Secure" in answer.headers["Set-Cookie"]
    assert COOKIE  # the session cookie follows the same rule


# -- query parameters before the region ----------------------------------------------------
def test_a_bad_limit_is_refused_before_the_region(client):
    answer = client.get("/v1/regions/Nowhere/tasks?limit=1001", headers=AUTH)
    assert answer.status_code == 400


def test_a_delete_of_the_task_a_post_just_returned_finds_it(client):
    """Schemathesis' stateful phase once saw a 404 here: the sequence itself is right."""
    created = client.post("/v1/regions/Burgos/tasks", headers=AUTH)
    assert created.status_code in (200, 202)
    task_id = created.get_json()["taskId"]
    answer = client.delete(f"/v1/regions/Burgos/tasks/{task_id}", headers=AUTH)
    assert answer.status_code in (204, 409)


# -- task messages ------------------------------------------------------------------------
def test_an_unexpected_error_leaves_its_type_in_the_task_not_its_text(client, monkeypatch, caplog):
    from app.tasks import TaskRunner
    from tests.support.service_app import wait_for_task

    def broken(self, task_id, region, live):
        raise RuntimeError("cannot open /srv/secret on db.internal:5432")

    monkeypatch.setattr(TaskRunner, "_sync", broken)
    created = client.post("/v1/regions/Burgos/tasks", headers=AUTH)
    task = wait_for_task(client, created.headers["Location"], AUTH)
    assert task["status"] == "failed"
    assert task["message"] == "RuntimeError"
    assert "db.internal" in caplog.text


# -- settings, the worker's metrics port, runserver ---------------------------------------
def test_edge_settings_and_their_defaults(server_files, tmp_path):
    from app.settings import SettingsError, read_settings

    base = Path(server_files["GLANCESYNC_SETTINGS_FILE"]).read_text()
    defaults = read_settings(server_files["GLANCESYNC_SETTINGS_FILE"], "")
    assert defaults.celery.metrics_host == "127.0.0.1"
    assert (defaults.max_body, defaults.proxy_hops, defaults.secure_cookies) == (
        1024 * 1024,
        0,
        "auto",
    )
    path = tmp_path / "fiware-glancesync.cfg"
    path.write_text(
        base.replace("[glancesync]", "[glancesync]\nMAX_BODY = 2048\nPROXY_HOPS = 2\n")
        + "\n[celery]\nMETRICS_HOST = 0.0.0.0\n[ui]\nMATRIX_TTL = 3\n"
    )
    given = read_settings(str(path), "")
    assert (given.max_body, given.proxy_hops, given.celery.metrics_host) == (2048, 2, "0.0.0.0")
    assert given.matrix_ttl == 3
    path.write_text(base.replace("[glancesync]", "[glancesync]\nSECURE_COOKIES = sometimes\n"))
    with pytest.raises(SettingsError, match="SECURE_COOKIES"):
        read_settings(str(path), "")


def test_the_worker_metrics_port_listens_on_metrics_host(monkeypatch):
    import app.broker as broker

    source = Path(broker.__file__).read_text()
    assert "serve_worker_metrics(app, settings.celery.metrics_host," in source


@pytest.mark.parametrize(
    ("args", "host", "warned"),
    [
        (["--host", "0.0.0.0"], "127.0.0.1", True),
        (["--host", "192.0.2.7"], "127.0.0.1", True),
        (["--host", "0.0.0.0", "--no-debug"], "0.0.0.0", False),
        (["--host", "::1"], "::1", False),
        (["--host", "localhost"], "localhost", False),
    ],
)
def test_runserver_never_exposes_the_debugger(app, monkeypatch, args, host, warned):
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from app import schedule, tasks
    from app.commands import cli

    ran = {}
    monkeypatch.setattr(type(app), "run", lambda self, **kwargs: ran.update(kwargs))
    monkeypatch.setattr(tasks, "start_service", lambda flask_app: True)
    monkeypatch.setattr(schedule, "start_scheduler", lambda flask_app: None)
    result = CliRunner().invoke(
        cli, ["runserver", "--no-reload", *args], obj=ScriptInfo(create_app=lambda: app)
    )
    assert result.exit_code == 0, result.output
    assert ran["host"] == host
    assert ("debugger" in result.output) is warned
