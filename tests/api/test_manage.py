"""manage.py as operators run it (subprocesses, from another working directory):
help texts of reference 11.5, ``db upgrade``, settings errors, and both servers."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.manage_process import SERVER_VARS, manage, wait_for_server
from tests.support.network import free_port
from tests.support.waiting import wait_until

MISSING_SETTINGS = (
    "ERROR: There is neither defined GLANCESYNC_SETTINGS_FILE environment variable\n"
    "pointing to fiware-glancesync.cfg nor /etc/fiware.d/fiware-glancesync.cfg\n"
    "file. Please correct at least one of them to execute the program.\n"
)


@pytest.fixture(scope="module", autouse=True)
def no_fiware_dir() -> None:
    if os.path.exists("/etc/fiware.d/fiware-glancesync.cfg"):
        pytest.fail("/etc/fiware.d/fiware-glancesync.cfg exists: these tests need it absent")


def test_help_lists_the_commands(repo_root, tmp_path):
    result = manage(repo_root, tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("Commands:\n", 1)[1]
    lines = [line.split(None, 1) for line in commands.splitlines() if line.strip()]
    assert dict(lines) == {
        "db": "Perform database migrations",
        "gunicornserver": "Run the GlanceSync server application within Gunicorn.",
        "listen": "Sync the regions when the master Glance announces a change.",
        "runserver": "Runs the Flask development server i.e. app.run()",
        "shell": "Runs a Python shell inside Flask application context.",
        "tasks": "Manage the stored sync tasks.",
        "worker": "Run a Celery worker: it syncs the tasks of its queues.",
    }


def test_command_help_texts(repo_root, tmp_path):
    run = manage(repo_root, tmp_path, "runserver", "--help").stdout
    for option in ("-t, --host", "-p, --port", "-d, --no-debug", "-r, --no-reload", "--threaded"):
        assert option in run
    gun = manage(repo_root, tmp_path, "gunicornserver", "--help").stdout
    flat = " ".join(gun.split())
    assert "-H, --host TEXT IP address or hostname of the Glancesync server." in flat
    assert "-p, --port INTEGER Port in which the GlanceSync server is running" in flat
    assert (
        "-w, --workers INTEGER Number of concurrent workers to be launched, usually "
        "2*core numbers+1."
    ) in flat
    db = manage(repo_root, tmp_path, "db", "--help").stdout
    for command in (
        "upgrade",
        "downgrade",
        "current",
        "history",
        "migrate",
        "revision",
        "stamp",
        "show",
        "heads",
        "branches",
        "merge",
        "edit",
        "init",
    ):
        assert f"  {command} " in db
    shell = manage(repo_root, tmp_path, "shell", "--help").stdout
    assert "Runs a Python shell inside Flask application context." in shell


def test_db_upgrade_from_another_directory(repo_root, tmp_path, server_files):
    db_file = tmp_path / "api.db"
    env = {**server_files, "GLANCESYNCAPP_DATABASE_URL": f"sqlite:///{db_file}"}
    result = manage(repo_root, tmp_path, "db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db_file) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"task", "alembic_version", "ix_task_one_syncing_per_region"} <= tables
    current = manage(repo_root, tmp_path, "db", "current", env=env)
    assert "(head)" in current.stdout + current.stderr


def test_default_sqlite_file_in_database_path(repo_root, tmp_path, server_files):
    env = {**server_files, "GLANCESYNCAPP_DATABASE_PATH": str(tmp_path / "data")}
    result = manage(repo_root, tmp_path, "db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "glancesyncapi.db").is_file()


def test_missing_settings_files(repo_root, tmp_path, server_files):
    result = manage(repo_root, tmp_path, "db", "upgrade")
    assert result.returncode != 0
    assert result.stderr == MISSING_SETTINGS


def test_no_logging_file_means_info_to_stderr(repo_root, tmp_path, server_files):
    """The packaged logging file: INFO lines on stderr with time, level and task/region."""
    only_settings = {
        "GLANCESYNC_SETTINGS_FILE": server_files["GLANCESYNC_SETTINGS_FILE"],
        "GLANCESYNCAPP_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
    }
    result = manage(repo_root, tmp_path, "db", "upgrade", env=only_settings)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if " INFO " in line]
    assert lines, result.stderr
    # outside a request and a task: "[- task - region -]" (request id, task, region)
    assert re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO \S+ \[- task - region -\] ", lines[0]
    ), lines[0]
    assert not list(tmp_path.glob("*.log"))


def test_missing_required_key(repo_root, tmp_path, server_files):
    settings = tmp_path / "fiware-glancesync.cfg"
    settings.write_text(
        "[openstack]\nKEYSTONE_URL = http://k:5000\nADM_USER = u\nADM_PASS = pw-secret\n"
    )
    env = {**server_files, "GLANCESYNC_SETTINGS_FILE": str(settings)}
    result = manage(repo_root, tmp_path, "gunicornserver", env=env)
    assert result.returncode != 0
    assert result.stderr == (
        "ERROR: Missing required key ADM_TENANT_ID or ADM_TENANT_NAME in section [openstack] "
        f"of {settings}\n"
    )
    assert "Traceback" not in result.stderr and "pw-secret" not in result.stderr


def test_unreadable_flask_config(repo_root, tmp_path, server_files):
    env = {**server_files, "GLANCESYNCAPP_CONFIG": str(tmp_path / "nope.py")}
    result = manage(repo_root, tmp_path, "db", "current", env=env)
    assert result.returncode != 0
    assert result.stderr.startswith("ERROR: GLANCESYNCAPP_CONFIG points to")


def serve(repo_root: Path, cwd: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k not in SERVER_VARS}
    environ.update(env)
    return subprocess.Popen(
        [sys.executable, str(repo_root / "manage.py"), *args],
        cwd=cwd,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    "command",
    [
        ["gunicornserver", "-H", "127.0.0.1", "-w", "2"],
        ["runserver", "-t", "127.0.0.1", "-d", "-r"],
    ],
)
def test_servers_answer(repo_root, tmp_path, server_files, command):
    port = free_port()
    env = {**server_files, "GLANCESYNCAPP_DATABASE_URL": f"sqlite:///{tmp_path}/s.db"}
    process = serve(repo_root, tmp_path, env, *command, "-p", str(port))
    try:
        info = wait_for_server(port, process)
        assert info["owner"] == "Test Owner"
        if command[0] == "gunicornserver":
            pid = int((tmp_path / "tmp" / "processes.pid").read_text())
            assert pid == process.pid
            # gunicorn forks its workers one after the other: wait for both
            wait_until(lambda: children(process.pid) == 2, 15, step=0.2)
            # the arbiter never built the app: it holds no database file open
            assert not open_files(process.pid, "s.db")
    finally:
        stop(process)


def children(pid: int) -> int:
    return len(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


def open_files(pid: int, name: str) -> list[str]:
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if name in target:
            found.append(target)
    return found


def test_gunicorn_binds_an_ipv6_address(repo_root, tmp_path, server_files):
    port = free_port()
    env = {**server_files, "GLANCESYNCAPP_DATABASE_URL": f"sqlite:///{tmp_path}/s.db"}
    process = serve(
        repo_root, tmp_path, env, "gunicornserver", "-H", "::1", "-w", "1", "-p", str(port)
    )
    try:
        info = wait_for_server(port, process, host="[::1]")
        assert info["owner"] == "Test Owner"
    finally:
        stop(process)


def old_database(repo_root: Path, tmp_path: Path, env: dict[str, str]) -> Path:
    """A database at revision 0001 holding a task left syncing by a dead server."""
    db_file = tmp_path / "old.db"
    env["GLANCESYNCAPP_DATABASE_URL"] = f"sqlite:///{db_file}"
    result = manage(repo_root, tmp_path, "db", "upgrade", "0001", env=env)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db_file) as conn:
        old = "2020-01-01 00:00:00.000000"
        conn.execute(
            "INSERT INTO task (task_id, region, status, user_name, created, updated, images,"
            " worker, heartbeat) VALUES ('t1', 'Burgos', 'syncing', 'u', ?, ?, '[]', 'gone:1', ?)",
            (old, old, old),
        )
    return db_file


def test_db_upgrade_runs_no_task_recovery(repo_root, tmp_path, server_files):
    """Upgrading a 0001 database: no traceback, and the old task is left to the server."""
    env = dict(server_files)
    db_file = old_database(repo_root, tmp_path, env)
    result = manage(repo_root, tmp_path, "db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT status FROM task").fetchone() == ("syncing",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    port = free_port()
    process = serve(
        repo_root, tmp_path, env, "runserver", "-t", "127.0.0.1", "-d", "-r", "-p", str(port)
    )
    try:
        wait_for_server(port, process)
        with sqlite3.connect(db_file) as conn:
            assert conn.execute("SELECT status, message FROM task").fetchone() == (
                "failed",
                "Sync interrupted: the server process running it stopped",
            )
    finally:
        stop(process)


def test_listen_without_a_transport_url_says_which_key_is_missing(
    repo_root, tmp_path, server_files
):
    env = {**server_files, "GLANCESYNCAPP_DATABASE_URL": f"sqlite:///{tmp_path}/l.db"}
    result = manage(repo_root, tmp_path, "listen", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "ERROR: manage.py listen needs [notifications] TRANSPORT_URL in "
        f"{server_files['GLANCESYNC_SETTINGS_FILE']}\n"
    )
