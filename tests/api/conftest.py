"""Fixtures of the REST service tests.

Every test that uses ``app`` runs twice: on SQLite and on PostgreSQL
(``postgresql://postgres@127.0.0.1:5432/test``, which must be reachable: the run fails,
it does not skip). The modules marked ``all_databases`` (leases, tasks, groups, cancel,
migrations) run on MariaDB too (``root@127.0.0.1:3306``, required the same way). Each
session gets fresh databases whose schema is made by the Alembic migrations, so the
migrations are tested on each. Syncs use the real core library with the CSV mock backend
(GLANCESYNC_USE_MOCK).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pymysql
import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from jsonschema import Draft202012Validator
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from sqlalchemy import delete

from app import create_app
from app.models import Task, db
from app.routes import openapi_document
from app.tasks import start_service
from app.workers import new_worker, process_scope
from tests.api.fakes import TOKENS, FakeValidator

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB_ADMIN = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
DATABASES = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]

CORE_CONFIG = """\
[main]
master_region = Valladolid

[master]
credential = user1,cGFzczE=,http://keystone.invalid:5000/v3,tenant1

[other]
credential = user2,cGFzczI=,http://keystone2.invalid:5000/v3,tenant2
"""

BACKUPS = {
    "Valladolid": [
        "Valladolid,img01,001,active,10485760,c01,tenant1id,True,{'type': 'base'}",
        "Valladolid,img02,002,active,20971520,c02,tenant1id,True,{'type': 'base'}",
        "Valladolid,img03,003,active,31457280,c03,tenant1id,True,{'type': 'base'}",
    ],
    "Burgos": [
        "Burgos,img01,101,active,10485760,c01,tenant1id,True,{'type': 'base'}",
        "Burgos,img03,103,active,31457280,zz3,tenant1id,True,{'type': 'base'}",
    ],
    "Caceres": [],
    "other:Madrid": [
        "other:Madrid,img01,201,active,10485760,c01,tenant2id,True,{'type': 'base'}",
    ],
}
FAULTS = "Caceres,list,0\n"

SERVER_CFG = """\
[openstack]
KEYSTONE_URL = http://keystone.invalid:5000/v2.0
ADM_USER = glancesync-admin
ADM_PASS = {password}
ADM_TENANT_NAME = service

[glancesync]
OWNER = Test Owner

[http]
SETTINGS_TYPE = old
"""
SERVICE_PASSWORD = "pa55-very-secret"

LOGGING_CFG = """\
[loggers]
keys = root

[handlers]
keys = null

[formatters]
keys =

[logger_root]
level = DEBUG
handlers = null

[handler_null]
class = NullHandler
args = ()
"""


# -- files ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def server_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Settings files of the server and the environment that points at them."""
    folder = tmp_path_factory.mktemp("server")
    settings = folder / "fiware-glancesync.cfg"
    settings.write_text(SERVER_CFG.format(password=SERVICE_PASSWORD))
    logging_cfg = folder / "fiware-glancesync-logging.cfg"
    logging_cfg.write_text(LOGGING_CFG)
    return {
        "GLANCESYNC_SETTINGS_FILE": str(settings),
        "GLANCESYNC_LOGGING_SETTINGS_FILE": str(logging_cfg),
    }


@pytest.fixture(scope="session")
def core_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The core configuration and the mock folder of backups."""
    folder = tmp_path_factory.mktemp("core")
    config = folder / "glancesync.conf"
    config.write_text(CORE_CONFIG)
    backups = folder / "backups"
    backups.mkdir()
    for region, lines in BACKUPS.items():
        (backups / f"backup_{region}.csv").write_text("".join(line + "\n" for line in lines))
    (backups / "mock_faults").write_text(FAULTS)
    return {"config": str(config), "backups": str(backups)}


# -- databases -----------------------------------------------------------------------------
def migrate_schema(url: str, environ: dict[str, str]) -> None:
    """Create the schema the way operators do: the Alembic migrations (db upgrade)."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "CONFIGURE_LOGGING": False,
            "TOKEN_VALIDATOR": FakeValidator(),
        },
        environ=environ,
    )
    with app.app_context():
        upgrade()
        db.engine.dispose()


def postgres_admin() -> psycopg.Connection:
    try:
        return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is required by tests/api: {exc}")


def mariadb_admin() -> pymysql.Connection:
    try:
        return pymysql.connect(**MARIADB_ADMIN, autocommit=True, connect_timeout=5)
    except pymysql.MySQLError as exc:
        pytest.fail(f"MariaDB at 127.0.0.1:3306 (root) is required by tests/api: {exc}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """MariaDB runs only the modules marked ``all_databases``; the rest of the API suite
    stays on SQLite and PostgreSQL."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_mariadb = callspec is not None and callspec.params.get("database_url") == "mariadb"
        if on_mariadb and item.get_closest_marker("all_databases") is None:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """A new, empty PostgreSQL or MariaDB database for one test run, dropped after it."""
    name = f"glancesync_api_{uuid.uuid4().hex[:12]}"
    if kind == "mariadb":
        with mariadb_admin() as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        try:
            yield MARIADB_URL.format(name=name)
        finally:
            with mariadb_admin() as conn, conn.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        return
    with postgres_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with postgres_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=DATABASES)
def database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    server_files: dict[str, str],
) -> Iterator[str]:
    """A fresh database per session and backend, its schema made by the migrations."""
    if request.param == "sqlite":
        url = "sqlite:///" + str(tmp_path_factory.mktemp("sqlite") / "glancesyncapi.db")
        migrate_schema(url, server_files)
        yield url
        return
    with fresh_database(request.param) as url:
        migrate_schema(url, server_files)
        yield url


# -- applications --------------------------------------------------------------------------
class ValidatingClient(FlaskClient):
    """A test client that checks every answer against app/openapi.json."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        check_openapi(response)
        return response


_OPENAPI = OpenAPI.from_dict(openapi_document())
_ERROR_SCHEMA = Draft202012Validator(openapi_document()["components"]["schemas"]["Error"])


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
        _ERROR_SCHEMA.validate(json.loads(response.get_data()))


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
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_factory(
    database_url: str,
    server_files: dict[str, str],
    core_files: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator:
    """Builds apps on the session database; all are shut down and the table emptied after."""
    monkeypatch.setenv("GLANCESYNC_USE_MOCK", core_files["backups"])
    monkeypatch.delenv("GLANCESYNC_MOCKPERSISTENT_PATH", raising=False)
    monkeypatch.delenv("GLANCESYNC_CONFIG", raising=False)
    apps: list[Flask] = []
    serving: list[Flask] = []

    def factory(**config) -> Flask:
        if config.get("RECOVER_ON_START", True) and serving:  # another serving process
            config.setdefault("WORKER_SCOPE", f"test-process-{len(serving)}/{process_scope()}")
        apps.append(make_app(database_url, server_files, core_files, **config))
        if config.get("RECOVER_ON_START", True):
            serving.append(apps[-1])
        return apps[-1]

    yield factory
    for app in apps:
        app.extensions["glancesync.tasks"].shutdown(wait=True)
    if apps:
        clean(apps[0])
    for app in apps[1:]:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(app_factory) -> Flask:
    return app_factory()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def wait_for_task(client: FlaskClient, location: str, headers: dict, timeout: float = 20) -> dict:
    """Poll a task until it leaves ``syncing``."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(location, headers=headers).get_json()
        if body["status"] != "syncing" or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
