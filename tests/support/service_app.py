"""The REST service as the API tests build it: an app on a test database that checks every
answer against app/openapi.json, and how to clean it up and wait for its tasks."""

from __future__ import annotations

import json
from dataclasses import replace

from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from sqlalchemy import delete

from app import create_app
from app.models import Task, db
from app.routes import openapi_document
from app.tasks import start_service
from app.ui.throttle import SignInFailure
from app.workers import new_worker
from tests.api.fakes import TOKENS, FakeValidator
from tests.support.service_files import SERVICE_PASSWORD
from tests.support.waiting import wait_until


class ValidatingClient(FlaskClient):
    """A test client that checks every answer against app/openapi.json."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        check_openapi(response)
        return response


_OPENAPI = OpenAPI.from_dict(openapi_document())
ERROR_SCHEMA = Draft202012Validator(openapi_document()["components"]["schemas"]["Error"])


SECRETS = (SERVICE_PASSWORD, *TOKENS)


def check_openapi(response) -> None:
    """Documented operations: the full response check; others (404/405): the error body.
    No answer ever holds the service password or a token."""
    assert response.content_type == "application/json", response.content_type
    for secret in SECRETS:
        assert secret.encode() not in response.data
    body = response.request.environ.get("wsgi.input")
    if body is not None and body.seekable():
        body.seek(0)  # the view read the request body: the check reads it again
    request = WerkzeugOpenAPIRequest(response.request)
    try:
        _OPENAPI.validate_response(request, WerkzeugOpenAPIResponse(response))
    except (PathNotFound, OperationNotFound):
        assert response.status_code in (404, 405), response.status_code
        ERROR_SCHEMA.validate(json.loads(response.get_data()))


def make_app(
    database_url: str, server_files: dict[str, str], core_files: dict[str, str], **config
) -> Flask:
    """An app as a serving process has it: recovery done and lease loop running, unless
    ``RECOVER_ON_START=False``; ``WORKER_SCOPE`` makes it another process (``as_process``)."""
    serve = config.pop("RECOVER_ON_START", True)
    scope = config.pop("WORKER_SCOPE", None)
    settings = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "CONFIGURE_LOGGING": False,
        "TOKEN_VALIDATOR": FakeValidator(),
        "CORE_CONFIG_FILE": core_files["config"],
        "HEARTBEAT_INTERVAL": 0.2,
        **config,
    }
    app = create_app(settings, environ=server_files)
    app.test_client_class = ValidatingClient
    if scope is not None:
        as_process(app, scope)
    if serve:
        start_service(app)
    return app


def as_process(app: Flask, scope: str) -> None:
    """Give the app's runner the identity of another serving process of this host.

    The apps of one test share this process's pid, where real serving processes have one
    each; a runner judges a task named with its own pid by whether it holds it. So each
    further serving app gets a pid namespace (scope) of its own: the others then judge its
    tasks as those of another process whose pid they cannot check, by heartbeat alone."""
    app.extensions["glancesync.tasks"]._worker = replace(new_worker(), scope=scope)


def clean(app: Flask) -> None:
    app.extensions["glancesync.tasks"].shutdown(wait=True)
    with app.app_context():
        db.session.execute(delete(Task))
        db.session.execute(delete(SignInFailure))  # the page's throttle counts per session
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def wait_for_task(client: FlaskClient, location: str, headers: dict, timeout: float = 20) -> dict:
    """The task's body once it left ``syncing``; AssertionError if it did not in time."""

    def finished() -> dict | None:
        body = client.get(location, headers=headers).get_json()
        return body if body["status"] != "syncing" else None

    return wait_until(
        finished, timeout, step=0.05, what=f"task {location} to leave syncing", ignore=()
    )
