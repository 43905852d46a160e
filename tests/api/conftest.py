"""Fixtures of the REST service tests.

Every test that uses ``app`` runs twice: on SQLite and on PostgreSQL
(``postgresql://postgres@127.0.0.1:5432/test``, which must be reachable: the run fails,
it does not skip). Each session gets fresh databases whose schema is made by the Alembic
migrations, so the migrations are tested on both. Syncs use the real core library with
the CSV mock backend (GLANCESYNC_USE_MOCK).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from app import create_app
from app.models import db
from app.tasks import TaskRunner
from app.workers import process_scope
from tests.api.fakes import FakeValidator
from tests.support.service_app import clean, make_app
from tests.support.service_files import (
    BACKUPS,
    CORE_CONFIG,
    FAULTS,
    LOGGING_CFG,
    POSTGRES_ADMIN_URL,
    SERVER_CFG,
    SERVICE_PASSWORD,
)


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


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
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
    name = f"glancesync_api_{uuid.uuid4().hex[:12]}"
    with postgres_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        migrate_schema(url, server_files)
        yield url
    finally:
        with postgres_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- applications --------------------------------------------------------------------------
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


@pytest.fixture
def hold_syncs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks are created but never run: they stay ``syncing`` for the test to look at."""
    monkeypatch.setattr(TaskRunner, "launch", lambda self, task_id, region: None)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
