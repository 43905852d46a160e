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
    """The SQLAlchemy URL in the order of 11.3, with PostgreSQL mapped to psycopg 3."""
    url = (
        environ.get(DATABASE_URL_VAR, "")
        or settings.database_url
        or flask_uri
        or _sqlite_url(environ.get(DATABASE_PATH_VAR, "") or instance_path)
    )
    return psycopg_url(url)


def _sqlite_url(folder: str) -> str:
    Path(folder).mkdir(parents=True, exist_ok=True)
    return "sqlite:///" + os.path.join(os.path.abspath(folder), DATABASE_FILE)


def psycopg_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` use psycopg 3 (psycopg2 is not a dependency)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
