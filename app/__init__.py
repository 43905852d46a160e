"""The GlanceSync REST service (BEHAVIOUR.md 10 and 11): the Flask application factory.

``create_app`` reads the server settings, configures logging and the database, and wires
the token validator, the core library access, the task runner and the routes. Tests pass
``test_config`` (e.g. a fake ``TOKEN_VALIDATOR`` or a database URL) and ``environ``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import Migrate
from sqlalchemy import event
from sqlalchemy.engine import make_url

from app.auth import KeystoneValidator, init_auth
from app.broker import init_broker
from app.errors import register_error_handlers
from app.logs import configure_logging
from app.metrics import init_metrics
from app.models import Task, db
from app.oslo_config import OSLO_CONF, build_conf
from app.policy import make_enforcer
from app.regions import REFRESH_SECONDS, init_core
from app.routes import bp
from app.settings import (
    database_url,
    driver_url,
    flask_config_file,
    is_mysql,
    load_settings,
)
from app.tasks import init_tasks
from app.ui import init_ui

MIGRATIONS_DIR = str(Path(__file__).resolve().parent / "migrations")
migrate = Migrate()

DEFAULTS: dict[str, Any] = {
    "SYNC_WORKERS": 4,  # background syncs at the same time in one server process
    "HEARTBEAT_INTERVAL": 10.0,
    # Progress stored and cancel requests polled at most this often (seconds) per task.
    "PROGRESS_INTERVAL": 1.0,
    "DEAD_AFTER": 60.0,
    # A queued task nobody claims within this many seconds ends failed (D23).
    "QUEUE_TIMEOUT": 3600.0,
    # Attempts of a task's final write on database errors (exponential backoff).
    "FINAL_WRITE_ATTEMPTS": 5,
    "REGIONS_REFRESH": REFRESH_SECONDS,
    "CORE_CONFIG_FILE": None,  # None: GLANCESYNC_CONFIG, else /etc/glancesync.conf
    "CONFIGURE_LOGGING": True,
    "TOKEN_VALIDATOR": None,  # None: Keystone with the [openstack] credentials
    "MIGRATIONS_DIR": MIGRATIONS_DIR,
}


def create_app(
    test_config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Flask:
    """Build the service; raises SettingsError (printed by manage.py) on a bad setting."""
    environ = os.environ if environ is None else environ
    test_config = dict(test_config or {})
    settings = load_settings(environ)
    # No static folder: the API serves no files, and /static/<path> must be a JSON 404.
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    # No 308 redirect (an HTML page) from ``a//b`` to ``a/b``: such paths (e.g. a region
    # ``..%2F``) match no route and get the JSON 404 like any other unknown path (10.1).
    app.url_map.merge_slashes = False
    # No automatic OPTIONS answer (an empty text/html 200): OPTIONS is a JSON 405 like
    # any other method the routes of 10.4 do not list.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.config.from_mapping(DEFAULTS)
    app.config["REQUIRED_ROLES"] = settings.openstack.required_roles
    flask_file = flask_config_file(environ)
    if flask_file:
        app.config.from_pyfile(flask_file)
    flask_uri = app.config.get("SQLALCHEMY_DATABASE_URI")
    app.config.update(test_config)
    app.config["SETTINGS"] = settings
    app.config["RUNNING_FROM"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    explicit = test_config.get("SQLALCHEMY_DATABASE_URI")
    url = (
        driver_url(explicit)
        if explicit
        else database_url(settings, environ, flask_uri, app.instance_path)
    )
    configure_database(app, url, settings.pool_size)
    if app.config["CONFIGURE_LOGGING"]:
        configure_logging(settings.logging_file)
    app.json.sort_keys = False  # keys in the order of the spec
    register_error_handlers(app)
    init_security(app, settings)
    init_core(app)
    init_tasks(app)
    init_broker(app)
    app.register_blueprint(bp)
    init_ui(app)
    init_metrics(app)
    app.shell_context_processor(lambda: {"db": db, "Task": Task})
    # Task recovery and the lease loop start with the server (app.tasks.start_service),
    # not here: ``db upgrade`` and the other commands build the app too.
    return app


def init_security(app: Flask, settings) -> None:
    """One oslo.config object for keystonemiddleware and oslo.policy; a policy file that
    does not parse stops the service here (SettingsError)."""
    app.config.setdefault("VIEWER_ROLES", settings.openstack.viewer_roles)
    conf = build_conf(settings.settings_file, settings.openstack)
    app.extensions[OSLO_CONF] = conf
    enforcer = make_enforcer(conf, app.config["REQUIRED_ROLES"], app.config["VIEWER_ROLES"])
    validator = app.config["TOKEN_VALIDATOR"] or KeystoneValidator(settings.openstack, conf)
    init_auth(app, validator, enforcer)


def configure_database(app: Flask, url: str, pool_size: int = 5) -> None:
    """Database URL of 11.3 (a test URL wins), engine options, Flask-Migrate.

    SQLite runs in WAL mode (readers never wait for the writer) and serves one host only;
    PostgreSQL and MySQL/MariaDB get ``[database] POOL_SIZE`` connections per process.
    MySQL runs READ COMMITTED, as PostgreSQL does by default: under its REPEATABLE READ
    a lease loop would keep reading the snapshot of its first SELECT (docs/deploy)."""
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    sqlite = url.startswith("sqlite")
    if sqlite:
        create_private_file(url)
        # Several processes may write the same file: wait for the lock instead of failing.
        options.setdefault("connect_args", {"timeout": 30})
    else:
        options.setdefault("pool_pre_ping", True)
        options.setdefault("pool_size", pool_size)
    if is_mysql(url):
        options.setdefault("isolation_level", "READ COMMITTED")
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    if sqlite:
        with app.app_context():
            event.listen(db.engine, "connect", _sqlite_wal)
    migrate.init_app(app, db, directory=app.config["MIGRATIONS_DIR"], render_as_batch=True)


def create_private_file(url: str) -> None:
    """A new SQLite database file is created 0600 (its -wal and -shm files follow it):
    it holds who signed in and every task's history, for this host's user only."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:") or os.path.exists(path):
        return
    with contextlib.suppress(FileExistsError):  # another process made it first
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _sqlite_wal(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
