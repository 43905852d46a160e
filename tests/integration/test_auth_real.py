"""Issue 22 items 1-3 with the testbed's real Keystone and the real auth_token: a project
admin of another project, a system reader, a reader of the master's project, a revoked
token with ``token_cache_time = 2``, and the page's sign-in, session and sign-out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet
from service_process import ServiceProcess

from app.ui.sessions import KEY_CONTEXT
from testbed.identity import KeystoneAdmin, password_auth
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
TASKS = "/v1/regions/Trento/tasks"
PASSWORD = "issue22-pw"


def keystone_call(url: str, method: str, path: str, body=None, headers=None) -> tuple[Any, Any]:
    req = urllib.request.Request(url.rstrip("/") + path, method=method)
    req.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(req, data, timeout=30) as resp:
        raw = resp.read()
        return resp.headers, json.loads(raw) if raw else None


def token_of(url: str, user: str, scope: dict) -> str:
    body = password_auth(user, PASSWORD, "unused")
    body["auth"]["scope"] = scope
    return keystone_call(url, "POST", "/auth/tokens", body)[0]["X-Subject-Token"]


def revoke(url: str, token: str) -> None:
    headers = {"X-Auth-Token": token, "X-Subject-Token": token}
    keystone_call(url, "DELETE", "/auth/tokens", headers=headers)


def is_valid(url: str, admin_token: str, token: str) -> bool:
    headers = {"X-Auth-Token": admin_token, "X-Subject-Token": token}
    try:
        keystone_call(url, "GET", "/auth/tokens", headers=headers)
        return True
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        return False


@pytest.fixture(scope="module")
def people(tb_info) -> dict[str, Any]:
    """Users of keystone-1 made for this module: a customer's project admin, a system
    reader, a reader of the master's project (the service's own: admin)."""
    creds = tb_info["keystones"]["keystone-1"]
    admin = KeystoneAdmin(
        creds["url"], creds["admin"]["username"], creds["admin"]["password"], "admin"
    )
    tag = uuid.uuid4().hex[:6]
    customer = admin.create_project(f"customer-{tag}")
    names = {
        "customer_admin": f"custadmin-{tag}",
        "system_reader": f"sysreader-{tag}",
        "master_reader": f"reader-{tag}",
        "master_admin": f"masteradmin-{tag}",
    }
    admin.create_user(names["customer_admin"], PASSWORD, customer, ["admin", "member"])
    reader_id = admin.create_user(names["system_reader"], PASSWORD, customer, [])
    admin.put(f"/system/users/{reader_id}/roles/{admin.role_id('reader')}")
    admin.create_user(names["master_reader"], PASSWORD, admin.project_id, ["reader"])
    admin.create_user(names["master_admin"], PASSWORD, admin.project_id, ["admin"])
    url = creds["url"]
    master = {"project": {"id": admin.project_id}}
    return {
        "url": url,
        "admin_token": admin.token,
        "names": names,
        "customer": customer,
        "customer_name": f"customer-{tag}",
        "master": admin.project_id,
        "customer_admin": token_of(url, names["customer_admin"], {"project": {"id": customer}}),
        "system_reader": token_of(url, names["system_reader"], {"system": {"all": True}}),
        "master_reader": token_of(url, names["master_reader"], master),
    }


@pytest.fixture(scope="module")
def svc(tb_info, tmp_path_factory) -> Iterator[ServiceProcess]:
    """The service with ``[keystone_authtoken] token_cache_time = 2``."""
    folder = tmp_path_factory.mktemp("auth-real")
    process = ServiceProcess(tb_info, folder, folder / "images", workers=1)
    with open(folder / "fiware-glancesync.cfg", "a") as cfg:
        cfg.write("\n[keystone_authtoken]\ntoken_cache_time = 2\n")
    with process.running():
        yield process


def call(svc: ServiceProcess, method: str, token: str) -> int:
    return requests.request(
        method, svc.url + TASKS, headers={"X-Auth-Token": token}, timeout=30
    ).status_code


def test_a_project_admin_of_another_project_is_refused(svc, people):
    assert call(svc, "GET", people["customer_admin"]) == 403
    assert call(svc, "POST", people["customer_admin"]) == 403


def test_a_system_reader_may_view_only(svc, people):
    assert call(svc, "GET", people["system_reader"]) == 200
    assert call(svc, "POST", people["system_reader"]) == 403


def test_a_reader_of_the_masters_project_may_view(svc, people):
    assert call(svc, "GET", people["master_reader"]) == 200
    assert call(svc, "POST", people["master_reader"]) == 403


def test_a_revoked_token_is_refused_within_token_cache_time(svc, people):
    url, names = people["url"], people["names"]
    token = token_of(url, names["master_admin"], {"project": {"id": people["master"]}})
    assert call(svc, "GET", token) == 200
    revoke(url, token)
    deadline = time.monotonic() + 2 + 3  # token_cache_time, and some slack
    while call(svc, "GET", token) != 401:
        assert time.monotonic() < deadline, "the revoked token still works"
        time.sleep(0.5)


def sign_in(
    svc: ServiceProcess, user: str, project: str = "admin"
) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    form = browser.get(svc.url + "/ui/signin", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    data = {"user": user, "password": PASSWORD, "project": project, "csrf_token": csrf}
    answer = browser.post(svc.url + "/ui/signin", data=data, timeout=30, allow_redirects=False)
    return browser, answer


def test_the_page_refuses_a_project_admin_of_another_project(svc, people):
    _, answer = sign_in(svc, people["names"]["customer_admin"], people["customer_name"])
    assert answer.status_code == 401
    assert "glancesync_ui=" not in answer.headers.get("Set-Cookie", "")


def token_in_cookie(svc: ServiceProcess, cookie: str) -> str:
    """What only the service can read: the key comes from its own secret, not the database."""
    key = hmac.new(svc.admin["password"].encode(), KEY_CONTEXT, hashlib.sha256).digest()
    sealed = cookie.partition(".")[2]
    return Fernet(base64.urlsafe_b64encode(key)).decrypt(sealed.encode()).decode()


def test_the_page_session_and_sign_out_revoking_the_token(svc, people):
    browser, answer = sign_in(svc, people["names"]["master_admin"])
    assert answer.status_code == 303, answer.text
    cookie = browser.cookies.get("glancesync_ui", path="/ui/")
    token = token_in_cookie(svc, cookie)
    assert is_valid(people["url"], people["admin_token"], token)
    page = browser.get(svc.url + "/ui/", timeout=30)
    assert page.status_code == 200 and "(may sync)" in page.text
    csrf = re.search(r'name="csrf[-_]token" (?:content|value)="([^"]+)"', page.text).group(1)
    browser.post(svc.url + "/ui/signout", data={"csrf_token": csrf}, timeout=30)
    assert not is_valid(people["url"], people["admin_token"], token)
    replay = requests.get(
        svc.url + "/ui/", cookies={"glancesync_ui": cookie}, timeout=30, allow_redirects=False
    )
    assert replay.status_code == 303


def test_a_revoked_token_ends_the_page_session(svc, people):
    browser, answer = sign_in(svc, people["names"]["master_admin"])
    assert answer.status_code == 303, answer.text
    token = token_in_cookie(svc, browser.cookies.get("glancesync_ui", path="/ui/"))
    assert browser.get(svc.url + "/ui/", timeout=30).status_code == 200
    revoke(people["url"], token)
    wait_until(  # within token_cache_time = 2, and some slack
        lambda: browser.get(svc.url + "/ui/", timeout=30, allow_redirects=False).status_code == 303,
        2 + 3,
        step=0.5,
    )
