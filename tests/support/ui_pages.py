"""The web page as a browser uses it: sign-in form, CSRF tokens, the script's JSON calls."""

from __future__ import annotations

import re

from flask.testing import FlaskClient


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf[-_]token" (?:content|value)="([^"]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(client: FlaskClient, user: str = "alice", password: str = "alice-pw"):
    form = client.get("/ui/signin")
    token = csrf_of(form.get_data(as_text=True))
    return client.post(
        "/ui/signin",
        data={
            "user": user,
            "password": password,
            "project": "admin",
            "domain": "Default",
            "csrf_token": token,
        },
    )


def page_csrf(client: FlaskClient) -> str:
    return csrf_of(client.get("/ui/").get_data(as_text=True))


def get_json(client: FlaskClient, path: str):
    """A JSON call as the page's script makes it: cookie and CSRF header."""
    return client.get(path, headers={"X-CSRF-Token": page_csrf(client)})
