"""Server databases of the API tests: one fresh PostgreSQL or MariaDB database per run.

The servers must be reachable (the machine and CI start them): a test that needs one
fails, it never skips.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pymysql
import pytest

from tests.support.service_files import POSTGRES_ADMIN_URL

MARIADB_ADMIN = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"


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
