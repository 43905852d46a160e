"""The service's database URL, in the order of BEHAVIOUR.md 11.3."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from app.settings.sections import Settings

DATABASE_PATH_VAR = "GLANCESYNCAPP_DATABASE_PATH"
DATABASE_URL_VAR = "GLANCESYNCAPP_DATABASE_URL"
DATABASE_FILE = "glancesyncapi.db"


def database_url(
    settings: Settings, environ: Mapping[str, str], flask_uri: str | None, instance_path: str
) -> str:
    """The SQLAlchemy URL in the order of 11.3, with the drivers of ``driver_url``."""
    url = (
        environ.get(DATABASE_URL_VAR, "")
        or settings.database_url
        or flask_uri
        or _sqlite_url(environ.get(DATABASE_PATH_VAR, "") or instance_path)
    )
    return driver_url(url)


def _sqlite_url(folder: str) -> str:
    Path(folder).mkdir(parents=True, exist_ok=True)
    return "sqlite:///" + os.path.join(os.path.abspath(folder), DATABASE_FILE)


# A URL without a driver gets the one the package's extras install: psycopg 3 (psycopg2
# is not a dependency) and PyMySQL (pure Python; mysqlclient would need a compiler).
_DRIVERS = {
    "postgresql://": "postgresql+psycopg://",
    "postgres://": "postgresql+psycopg://",
    "mysql://": "mysql+pymysql://",
    "mariadb://": "mysql+pymysql://",
}


def driver_url(url: str) -> str:
    """The URL with the driver of its database when it names none."""
    for prefix, replacement in _DRIVERS.items():
        if url.startswith(prefix):
            return replacement + url[len(prefix) :]
    return url


psycopg_url = driver_url  # the earlier name, kept for importers


def is_mysql(url: str) -> bool:
    """MySQL or MariaDB, whatever the driver named."""
    return url.split(":", 1)[0].split("+", 1)[0] in ("mysql", "mariadb")
