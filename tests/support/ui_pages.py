"""The web page as a browser uses it: sign-in form, CSRF tokens, the script's JSON calls."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete

from app.models import db
from app.ui.models import UiSession
from app.ui.throttle import SignInFailure


@contextmanager
def page_app(
    app_factory: Callable[..., Flask],
    authenticator: Callable,
    revoker: Callable[[str], None] = lambda token: None,
) -> Iterator[Flask]:
    """An app whose page signs in through ``authenticator`` (and signs out through
    ``revoker``); its page sessions and counted sign-in failures go after the test."""
    app = app_factory(UI_AUTHENTICATOR=authenticator, UI_REVOKER=revoker)
    app.test_client_class = FlaskClient  # HTML pages: not the OpenAPI-checking client
    try:
        yield app
    finally:
        with app.app_context():
            db.session.execute(delete(UiSession))
            db.session.execute(delete(SignInFailure))
            db.session.commit()


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
