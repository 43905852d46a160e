"""The page under the same policy as the API, and its sessions without a token at rest
(issue 22 items 2 and 3), with the fake validator standing where auth_token is called."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from app.models import db
from app.ui.models import UiSession
from app.ui.sessions import COOKIE, Credentials, SignInRefused
from tests.api.fakes import ADMIN, OTHER_ADMIN, SYSTEM_READER
from tests.support.ui_pages import page_app, page_csrf, sign_in

PASSWORDS = {
    ("alice", "alice-pw"): ADMIN,
    ("mallory", "mallory-pw"): OTHER_ADMIN,
    ("sam", "sam-pw"): SYSTEM_READER,
}
REVOKED: list[str] = []


def authenticator(creds: Credentials) -> str:
    token = PASSWORDS.get((creds.user, creds.password))
    if token is None:
        raise SignInRefused("Wrong user name, password, project or domain")
    return token


@pytest.fixture
def ui_app(app_factory) -> Iterator[Flask]:
    REVOKED.clear()
    with page_app(app_factory, authenticator, REVOKED.append) as app:
        yield app


def test_an_admin_of_another_project_gets_no_page(ui_app):
    browser = ui_app.test_client()
    answer = sign_in(browser, "mallory", "mallory-pw")
    assert answer.status_code == 401
    assert browser.get_cookie(COOKIE, path="/ui/") is None
    assert browser.get("/ui/").status_code == 303


def test_a_system_reader_sees_the_page_read_only(ui_app):
    browser = ui_app.test_client()
    assert sign_in(browser, "sam", "sam-pw").status_code == 303
    html = browser.get("/ui/").get_data(as_text=True)
    assert "sam (read-only)" in html and "Sync now" not in html
    headers = {"X-CSRF-Token": page_csrf(browser)}
    assert browser.post("/ui/api/regions/Burgos/tasks", headers=headers).status_code == 403


def test_a_revoked_token_ends_the_page_session(ui_app):
    browser = ui_app.test_client()
    sign_in(browser)
    assert browser.get("/ui/").status_code == 200
    ui_app.config["TOKEN_VALIDATOR"].tokens.pop(ADMIN)  # auth_token now refuses it
    assert browser.get("/ui/").status_code == 303
    with ui_app.app_context():
        assert db.session.scalars(select(UiSession)).all() == []


def test_a_copy_of_the_database_and_a_forged_cookie_get_nothing(ui_app):
    browser = ui_app.test_client()
    sign_in(browser)
    cookie = browser.get_cookie(COOKIE, path="/ui/").value
    session_id, _, sealed = cookie.partition(".")
    assert ADMIN not in cookie and sealed
    thief = ui_app.test_client()
    thief.set_cookie(COOKIE, f"{session_id}.{sealed[:-4]}AAAA", path="/ui/")
    assert thief.get("/ui/").status_code == 303
    thief.set_cookie(COOKIE, session_id, path="/ui/")
    assert thief.get("/ui/").status_code == 303


def test_sign_out_revokes_the_token(ui_app):
    browser = ui_app.test_client()
    sign_in(browser)
    browser.post("/ui/signout", data={"csrf_token": page_csrf(browser)})
    assert REVOKED == [ADMIN]
