"""No reusable credential at rest (issue 22 item 3): a new SQLite database is 0600."""

from __future__ import annotations

import stat

from app import create_app
from tests.api.fakes import FakeValidator


def test_a_new_sqlite_database_is_created_0600(server_files, tmp_path):
    path = tmp_path / "glancesyncapi.db"
    config = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
        "CONFIGURE_LOGGING": False,
        "TOKEN_VALIDATOR": FakeValidator(),
    }
    create_app(config, environ=server_files)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
