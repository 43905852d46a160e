"""Passwords and tokens never reach logs, error bodies or task records (reference 11.4).

A whole session of use is replayed with the shipped logging configuration (so the real
rotating ``glancesync-api.log`` is written), with syncs that succeed and fail, and with
every kind of authentication failure; then every place a secret could leak is searched:
the log records, the log file, every response (body and headers) and every stored task.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.auth import KeystoneUnavailable, KeystoneValidator
from app.models import Task, db
from app.settings import OpenStackSettings
from glancesync.credentials import Connection
from tests.api.fakes import ADMIN, EXPIRED, KEYSTONE_DOWN, NO_ROLE, REJECTED_CREDENTIALS, TOKENS
from tests.support.service_app import clean, make_app, wait_for_task
from tests.support.service_files import SERVICE_PASSWORD

REPO = Path(__file__).resolve().parents[2]
# The core passwords of tests/support/service_files.py CORE_CONFIG, plain and base64 as in the file.
CORE_SECRETS = ("pass1", "pass2", "cGFzczE=", "cGFzczI=")
SECRETS = (SERVICE_PASSWORD, *TOKENS, *CORE_SECRETS)
LOGGERS = ("", "GlanceSync-API", "GlanceSync-Client", "keystoneauth")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """fileConfig rewires the root logger: put every logger back as pytest had it."""
    saved = {
        name: (logging.getLogger(name), list(logging.getLogger(name).handlers)) for name in LOGGERS
    }
    states = {name: (lg.level, lg.propagate, lg.disabled) for name, (lg, _) in saved.items()}
    yield
    for name, (logger, handlers) in saved.items():
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)
        logger.level, logger.propagate, logger.disabled = states[name]


@pytest.fixture
def logged_app(
    database_url: str,
    server_files: dict[str, str],
    core_files: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    restore_logging: None,
) -> Iterator[Flask]:
    """The service with the shipped logging file; the log file lands in ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GLANCESYNC_USE_MOCK", core_files["backups"])
    monkeypatch.delenv("GLANCESYNC_MOCKPERSISTENT_PATH", raising=False)
    environ = {
        **server_files,
        "GLANCESYNC_LOGGING_SETTINGS_FILE": str(REPO / "fiware-glancesync-logging.cfg"),
    }
    app = make_app(database_url, environ, core_files, CONFIGURE_LOGGING=True)
    # fileConfig removed caplog's handler from the root; the core logger does not propagate.
    for name in ("", "GlanceSync-Client"):
        logging.getLogger(name).addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    yield app
    clean(app)


def use_the_service(client: FlaskClient) -> list:
    """A sync that works, one that fails, and each way a token can be refused."""
    admin = {"X-Auth-Token": ADMIN}
    responses = []
    created = client.post("/v1/regions/Burgos/tasks", headers=admin)
    responses += [created, wait_for_task_response(client, created, admin)]
    failing = client.post("/v1/regions/Caceres/tasks", headers=admin)
    responses += [failing, wait_for_task_response(client, failing, admin)]
    responses.append(client.get("/v1/regions/Burgos/images", headers=admin))
    responses.append(client.get("/v1/regions/Caceres/images", headers=admin))
    for token in (KEYSTONE_DOWN, REJECTED_CREDENTIALS, EXPIRED, NO_ROLE, "x" * 64):
        responses.append(client.get("/v1/regions/Burgos/tasks", headers={"X-Auth-Token": token}))
    responses.append(client.get("/v1/regions/Nowhere/tasks", headers=admin))
    return responses


def wait_for_task_response(client: FlaskClient, created, headers: dict):
    location = created.headers["Location"]
    wait_for_task(client, location, headers)
    return client.get(location, headers=headers)


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} found in {where}"


def test_no_secret_in_logs_bodies_or_tasks(logged_app: Flask, caplog, tmp_path: Path):
    client = logged_app.test_client()
    responses = use_the_service(client)
    logged_app.extensions["glancesync.tasks"].shutdown(wait=True)
    codes = sorted({response.status_code for response in responses})
    assert codes == [200, 202, 401, 403, 410, 503], codes  # every path above was taken
    for response in responses:
        assert_no_secret(response.get_data(as_text=True), f"body of {response.request.path}")
        assert_no_secret(str(response.headers), f"headers of {response.request.path}")
    columns = Task.__table__.columns
    with logged_app.app_context():
        tasks = db.session.scalars(select(Task)).all()
        statuses = sorted(task.status for task in tasks)
        rows = [json.dumps({c.name: str(getattr(t, c.name)) for c in columns}) for t in tasks]
        db.session.remove()
    assert statuses == ["failed", "synced"]
    assert_no_secret("\n".join(rows), "the task table")
    assert caplog.records, "nothing was logged: the check would prove nothing"
    assert "Uploading image img02" in caplog.text  # the core's log is in the check too
    assert_no_secret(caplog.text, "the log records")
    log_file = tmp_path / "glancesync-api.log"
    assert log_file.stat().st_size > 0
    assert_no_secret(log_file.read_text(), "glancesync-api.log")


def test_keystone_failure_messages_hold_no_secret():
    """The real validator, against a closed port: the 503 description names no secret."""
    settings = OpenStackSettings(
        Connection(
            keystone_url="http://127.0.0.1:9/v3",
            user="glancesync-admin",
            password=SERVICE_PASSWORD,
            tenant="service",
        )
    )
    validator = KeystoneValidator(settings)
    with pytest.raises(KeystoneUnavailable) as info:
        validator.validate(ADMIN)
    assert_no_secret(str(info.value), "the KeystoneUnavailable message")
    assert SERVICE_PASSWORD not in repr(settings)
