"""The web page's sign-in, sessions, CSRF, roles and JSON endpoints (issue 16, item 1),
through the Flask test client on SQLite and PostgreSQL with the CSV mock backend.

The browser itself is tested in tests/integration/test_ui_browser.py.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.models import Task, db
from app.ui.models import UiSession
from app.ui.sessions import COOKIE, SIGNIN_COOKIE, Credentials, SignInRefused
from tests.api.fakes import ADMIN, MEMBER
from tests.support.gated_uploads import GatedUploads
from tests.support.service_app import wait_for_task
from tests.support.ui_pages import get_json, page_app, page_csrf, sign_in

PASSWORDS = {("alice", "alice-pw"): ADMIN, ("carol", "carol-pw"): MEMBER}


def fake_keystone(creds: Credentials) -> str:
    """Password sign-in without Keystone: the tokens the FakeValidator knows."""
    token = PASSWORDS.get((creds.user, creds.password))
    if token is None:
        raise SignInRefused("Wrong user name, password, project or domain")
    return token


REVOKED: list[str] = []  # tokens the fake Keystone was asked to revoke at sign-out


@pytest.fixture
def ui_app(app_factory) -> Iterator[Flask]:
    REVOKED.clear()
    with page_app(app_factory, fake_keystone, REVOKED.append) as app:
        yield app


@pytest.fixture
def browser(ui_app: Flask) -> FlaskClient:
    return ui_app.test_client()


def test_signed_out_browser_is_sent_to_sign_in(browser):
    answer = browser.get("/ui/")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/ui/signin"
    form = browser.get("/ui/signin")
    assert form.status_code == 200 and form.mimetype == "text/html"
    assert 'name="password"' in form.get_data(as_text=True)
    api = browser.get("/ui/api/matrix")
    assert api.status_code == 401 and api.get_json()["error"]["code"] == 401


def test_sign_in_keeps_no_token_at_rest(browser, ui_app):
    answer = sign_in(browser)
    assert answer.status_code == 303 and answer.headers["Location"] == "/ui/"
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui/" in cookie
    assert ADMIN not in cookie  # the cookie holds the token only encrypted
    with ui_app.app_context():
        rows = db.session.scalars(select(UiSession)).all()
        assert [r.user_name for r in rows] == ["alice"]
        assert not hasattr(rows[0], "token")
    page = browser.get("/ui/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "alice (may sync)" in html and "Sync now" in html
    assert 'data-region="Burgos"' in html and 'data-region="other:Madrid"' in html
    assert 'data-region="Valladolid"' not in html  # the master region is no column


def test_session_is_served_by_another_server_process(browser, app_factory):
    """The session lives in the database: a second app (another worker) knows it."""
    sign_in(browser)
    other = app_factory(UI_AUTHENTICATOR=fake_keystone, UI_REVOKER=REVOKED.append)
    other.test_client_class = FlaskClient
    second = other.test_client()
    second.set_cookie(COOKIE, browser.get_cookie(COOKIE, path="/ui/").value, path="/ui/")
    assert second.get("/ui/").status_code == 200


def test_wrong_password_shows_an_error(browser):
    answer = sign_in(browser, password="wrong")
    assert answer.status_code == 401
    html = answer.get_data(as_text=True)
    assert "Sign-in failed: Wrong user name, password, project or domain." in html
    assert browser.get_cookie(COOKIE, path="/ui/") is None


def test_sign_in_form_needs_its_csrf_token(browser):
    browser.get("/ui/signin")
    answer = browser.post(
        "/ui/signin",
        data={"user": "alice", "password": "alice-pw", "project": "p", "csrf_token": "forged"},
    )
    assert answer.status_code == 400
    assert "The form had expired" in answer.get_data(as_text=True)
    browser.delete_cookie(SIGNIN_COOKIE, path="/ui/")
    answer = browser.post(
        "/ui/signin",
        data={"user": "alice", "password": "alice-pw", "project": "p", "csrf_token": ""},
    )
    assert answer.status_code == 400


def test_posts_need_the_session_csrf_token(browser, ui_app):
    sign_in(browser)
    refused = browser.post("/ui/api/regions/Burgos/tasks")
    assert refused.status_code == 400
    assert refused.get_json()["error"]["description"] == "Missing or wrong CSRF token"
    assert browser.get("/ui/api/tasks").status_code == 400  # JSON calls need it too
    refused = browser.post("/ui/signout", data={"csrf_token": "forged"})
    assert refused.status_code == 400 and refused.mimetype == "text/html"
    with ui_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Task)) == 0


def test_sync_now_and_the_tasks_json(browser):
    sign_in(browser)
    csrf = page_csrf(browser)
    started = browser.post("/ui/api/regions/Burgos/tasks", headers={"X-CSRF-Token": csrf})
    assert started.status_code == 202, started.get_data(as_text=True)
    task = started.get_json()
    assert (task["region"], task["user"]) == ("Burgos", "alice")
    wait_for_task(browser, f"/v1/regions/Burgos/tasks/{task['taskId']}", {"X-Auth-Token": ADMIN})
    tasks = get_json(browser, "/ui/api/tasks").get_json()["regions"]
    burgos = next(region for region in tasks if region["name"] == "Burgos")
    assert burgos["tasks"][0]["taskId"] == task["taskId"]
    assert burgos["tasks"][0]["status"] == "synced"
    assert {image["name"] for image in burgos["tasks"][0]["images"]} >= {"img02"}


def test_matrix_has_statuses_sizes_checksums_and_counts(browser):
    sign_in(browser)
    body = get_json(browser, "/ui/api/matrix").get_json()
    regions = {region["name"]: region for region in body["regions"]}
    assert set(regions) == {"Burgos", "Caceres", "other:Madrid"}
    assert regions["Burgos"]["counts"] == {"ok": 1, "pending": 1, "error": 1}
    assert regions["other:Madrid"]["target"] == "other"
    assert regions["Caceres"]["error"]  # its listing fails (mock fault): shown, not a crash
    img02 = next(image for image in body["images"] if image["name"] == "img02")
    assert (img02["size"], img02["checksum"]) == (20971520, "c02")
    cell = img02["cells"]["Burgos"]
    assert (cell["status"], cell["class"], cell["action"]) == (
        "pending_upload",
        "pending",
        "upload the image",
    )


def test_a_viewer_sees_the_page_but_cannot_sync(browser, ui_app):
    sign_in(browser, "carol", "carol-pw")
    html = browser.get("/ui/").get_data(as_text=True)
    assert "carol (read-only)" in html and "Sync now" not in html
    csrf = page_csrf(browser)
    refused = browser.post("/ui/api/regions/Burgos/tasks", headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403
    with ui_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Task)) == 0


def test_no_role_no_page(app_factory, ui_app):
    app = app_factory(UI_AUTHENTICATOR=fake_keystone, VIEWER_ROLES=("reader",))
    app.test_client_class = FlaskClient
    answer = sign_in(app.test_client(), "carol", "carol-pw")
    assert answer.status_code == 401
    # The same message as a wrong password (issue 22): the roles go to the log only.
    html = answer.get_data(as_text=True)
    assert "Sign-in failed: Wrong user name, password, project or domain." in html
    assert "roles" not in html


def test_sign_out_ends_the_session(browser, ui_app):
    sign_in(browser)
    answer = browser.post("/ui/signout", data={"csrf_token": page_csrf(browser)})
    assert answer.status_code == 303 and answer.headers["Location"] == "/ui/signin"
    assert browser.get("/ui/").status_code == 303
    with ui_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(UiSession)) == 0
    assert REVOKED == [ADMIN]  # and the token is revoked in Keystone


def test_the_api_stays_token_only(browser):
    sign_in(browser)
    answer = browser.get("/v1/regions/Burgos/images")
    assert answer.status_code == 401 and answer.mimetype == "application/json"


def test_errors_under_ui_are_html_pages(browser):
    sign_in(browser)
    missing = browser.get("/ui/nowhere")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "404 Item not found" in missing.get_data(as_text=True)
    bad_method = browser.delete("/ui/")
    assert bad_method.status_code == 405 and bad_method.mimetype == "text/html"
    assert "GET" in bad_method.headers["Allow"]
    api_missing = browser.get("/v1/nowhere")
    assert api_missing.mimetype == "application/json"
    bad_region = browser.post(
        "/ui/api/regions/Atlantis/tasks", headers={"X-CSRF-Token": page_csrf(browser)}
    )
    assert bad_region.status_code == 410 and bad_region.get_json()["error"]["code"] == 410


def test_static_files_are_under_ui_static(browser):
    assert browser.get("/ui/static/ui.js").status_code == 200
    assert browser.get("/ui/static/ui.css").status_code == 200
    assert browser.get("/static/ui.js").status_code == 404


def test_matrix_when_the_master_cannot_be_read(browser, monkeypatch):
    from glancesync.engine import GlanceSync
    from glancesync.errors import BackendError

    def down(self, *args, **kwargs):
        raise BackendError("Valladolid: Glance server unreachable")

    sign_in(browser)
    monkeypatch.setattr(GlanceSync, "load_master", down)
    answer = get_json(browser, "/ui/api/matrix")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["images"] == []
    assert {r["error"] for r in body["regions"]} == {
        "Cannot read the master region: Valladolid: Glance server unreachable"
    }


def test_nothing_is_loaded_from_outside(browser):
    """No CDN, no external font: every page and static file names local paths only."""
    sign_in(browser)
    texts = [
        browser.get(path).get_data(as_text=True)
        for path in ("/ui/", "/ui/signin", "/ui/static/ui.js", "/ui/static/ui.css")
    ]
    for text in texts:
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), text[:200]
        assert "@import" not in text and "@font-face" not in text
    page = browser.get("/ui/")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("tls", "verify"),
    [({"cacert": "/etc/ca.pem"}, "/etc/ca.pem"), ({"insecure": True}, False), ({}, True)],
)
def test_sign_in_goes_over_the_services_own_tls_settings(monkeypatch, tls, verify):
    """The page's Keystone login trusts what the token checks trust (CACERT, INSECURE)."""
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    from app.settings import OpenStackSettings
    from app.ui.sessions import keystone_authenticator
    from glancesync.credentials import Connection

    seen = {}

    class Ref:
        auth_token = "tok"

    monkeypatch.setattr(session.Session, "__init__", lambda self, **kw: seen.update(kw))
    monkeypatch.setattr(v3.Password, "get_auth_ref", lambda self, sess: Ref())
    settings = OpenStackSettings(
        Connection(keystone_url="https://ks:5000/v3", user="u", password="p", **tls)
    )
    creds = Credentials(user="alice", password="pw", project="demo", domain="Default")
    assert keystone_authenticator(settings)(creds) == "tok"
    assert seen["verify"] == verify


def test_cancel_a_running_sync_from_the_page(app_factory):
    """The page's Cancel button: 202, and the task ends ``failed``/``cancelled``."""
    from app.regions import core

    started, gate = threading.Event(), threading.Event()
    app = app_factory(UI_AUTHENTICATOR=fake_keystone, PROGRESS_INTERVAL=0.05)
    app.test_client_class = FlaskClient
    with app.app_context():
        gs = core().glancesync()
        gs.backends = {name: GatedUploads(b, started, gate) for name, b in gs.backends.items()}
    browser = app.test_client()
    try:
        sign_in(browser)
        csrf = {"X-CSRF-Token": page_csrf(browser)}
        task = browser.post("/ui/api/regions/Burgos/tasks", headers=csrf).get_json()
        assert started.wait(60), "the upload did not start"
        cancel = f"/ui/api/regions/Burgos/tasks/{task['taskId']}/cancel"
        answer = browser.post(cancel, headers=csrf)
        assert answer.status_code == 202, answer.get_data(as_text=True)
        gate.set()
        location = f"/v1/regions/Burgos/tasks/{task['taskId']}"
        final = wait_for_task(browser, location, {"X-Auth-Token": ADMIN})
        assert (final["status"], final["message"]) == ("failed", "cancelled")
        assert browser.post(cancel, headers=csrf).status_code == 409  # already ended
    finally:
        gate.set()
