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

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from app import create_app
from app.models import db
from app.tasks import TaskRunner
from app.workers import process_scope
from tests.api.fakes import FakeValidator
from tests.support.databases import fresh_database
from tests.support.service_app import clean, make_app
from tests.support.service_files import (
    BACKUPS,
    CORE_CONFIG,
    FAULTS,
    LOGGING_CFG,
    SERVER_CFG,
    SERVICE_PASSWORD,
)

DATABASES = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


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
