"""Run the REST service against the testbed the way an operator does.

Shared by ``make demo`` and ``tests/integration/test_service.py``: both write the settings
files, point the environment variables of reference 11.2 at them, run
``manage.py db upgrade`` and ``manage.py gunicornserver`` as separate processes, and talk
to the service over HTTP with a real Keystone token. Nothing here imports ``app``: the
service under test is only ever reached through its command line and its API.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
MANAGE = REPO / "manage.py"
MASTER = "Spain2"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class ServiceFiles:
    """Every file of one service instance, all inside ``workdir`` (its working directory)."""

    workdir: Path

    @property
    def settings(self) -> Path:
        return self.workdir / "fiware-glancesync.cfg"

    @property
    def logging(self) -> Path:
        return self.workdir / "fiware-glancesync-logging.cfg"

    @property
    def core(self) -> Path:
        return self.workdir / "glancesync.conf"

    @property
    def database(self) -> Path:
        return self.workdir / "glancesyncapi.db"

    @property
    def pidfile(self) -> Path:
        return self.workdir / "gunicorn.pid"

    @property
    def api_log(self) -> Path:
        return self.workdir / "glancesync-api.log"

    @property
    def server_log(self) -> Path:
        return self.workdir / "server.log"

    @property
    def images_dir(self) -> Path:
        return self.workdir / "images"


def settings_text(keystone: dict[str, Any], port: int, workers: int, pidfile: Path) -> str:
    """fiware-glancesync.cfg: the testbed admin validates tokens (11.1)."""
    admin = keystone["admin"]
    return (
        "[openstack]\n"
        f"KEYSTONE_URL = {keystone['url']}\n"
        f"ADM_USER = {admin['username']}\n"
        f"ADM_PASS = {admin['password']}\n"
        f"ADM_TENANT_NAME = {admin['project_name']}\n"
        f"USER_DOMAIN_NAME = {admin['user_domain_name']}\n"
        f"PROJECT_DOMAIN_NAME = {admin['project_domain_name']}\n"
        "REQUIRED_ROLES = admin\n\n"
        "[glancesync]\n"
        "HOST = 127.0.0.1\n"
        f"PORT = {port}\n\n"
        "[gunicorn]\n"
        f"WORKERS = {workers}\n"
        f"PIDFILE = {pidfile}\n"
        "LOGLEVEL = info\n"
    )


def logging_text(api_log: Path, keystone_requests: bool = False) -> str:
    """A fileConfig file like the shipped one, with absolute paths.

    ``keystone_requests`` logs the service's Keystone requests (tokens hashed by
    keystoneauth) so a test can count token validations.
    """
    ks_level = "DEBUG" if keystone_requests else "WARNING"
    return (
        "[loggers]\nkeys = root, client, keystoneauth\n\n"
        "[handlers]\nkeys = apifile\n\n"
        "[formatters]\nkeys = api\n\n"
        "[logger_root]\nlevel = DEBUG\nhandlers = apifile\n\n"
        "[logger_client]\nqualname = GlanceSync-Client\nlevel = INFO\n"
        "handlers = apifile\npropagate = 0\n\n"
        f"[logger_keystoneauth]\nqualname = keystoneauth\nlevel = {ks_level}\n"
        "handlers =\npropagate = 1\n\n"
        "[handler_apifile]\nclass = FileHandler\nlevel = DEBUG\nformatter = api\n"
        f"args = ({str(api_log)!r}, 'a')\n\n"
        "[formatter_api]\n"
        "format = %%(asctime)s {%%(filename)s:%%(lineno)d} %%(levelname)s glancesync-api [-] "
        "%%(message)s\n"
    ).replace("%%", "%")


def core_config_text(info: dict[str, Any], images_dir: Path) -> str:
    """Core configuration (section 2): master Spain2 on keystone-1, target ``other`` on
    keystone-2 (region Madrid). Keystone URLs without ``/v3``, as operators write them."""

    def credential(keystone: str) -> str:
        ks = info["keystones"][keystone]
        admin = ks["admin"]
        return (
            f"user = {admin['username']}\n"
            f"password = {admin['password']}\n"
            f"keystone_url = {ks['url'].removesuffix('/v3')}\n"
            f"tenant = {admin['project_name']}\n"
        )

    return (
        f"[main]\nmaster_region = {MASTER}\nimages_dir = {images_dir}\n\n"
        f"[master]\n{credential('keystone-1')}\n"
        f"[other]\n{credential('keystone-2')}"
    )


def write_private(path: Path, text: str) -> None:
    """Files holding passwords are readable by their owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)


def write_files(
    files: ServiceFiles,
    info: dict[str, Any],
    port: int,
    workers: int = 2,
    keystone_requests: bool = False,
) -> None:
    """The three configuration files of a service instance for the testbed ``info``."""
    files.images_dir.mkdir(parents=True, exist_ok=True)
    keystone = info["keystones"]["keystone-1"]
    write_private(files.settings, settings_text(keystone, port, workers, files.pidfile))
    write_private(files.logging, logging_text(files.api_log, keystone_requests))
    write_private(files.core, core_config_text(info, files.images_dir))


def service_environ(files: ServiceFiles) -> dict[str, str]:
    """The environment of 11.2, without variables that would switch the core to a mock."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("GLANCESYNC", "OS_"))
    }
    env.update(
        GLANCESYNC_SETTINGS_FILE=str(files.settings),
        GLANCESYNC_LOGGING_SETTINGS_FILE=str(files.logging),
        GLANCESYNC_CONFIG=str(files.core),
        GLANCESYNCAPP_DATABASE_URL=f"sqlite:///{files.database}",
    )
    return env


def manage(*args: str, python: str = sys.executable) -> list[str]:
    """The argv of a manage.py command (absolute path: it runs from the service's workdir)."""
    return [python, str(MANAGE), *args]


def db_upgrade(files: ServiceFiles, python: str = sys.executable) -> str:
    """``manage.py db upgrade``; returns its output, raises with it on failure."""
    done = subprocess.run(
        manage("db", "upgrade", python=python),
        cwd=files.workdir,
        env=service_environ(files),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode:
        raise RuntimeError(f"manage.py db upgrade failed:\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


def port_free(port: int) -> bool:
    """Bindable the way gunicorn binds (SO_REUSEADDR: a just-stopped server's port is)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(
    files: ServiceFiles, port: int, workers: int = 2, python: str = sys.executable
) -> subprocess.Popen:
    """Start gunicorn detached (own session, output in server.log); waits until it answers."""
    with open(files.server_log, "ab") as out:
        proc = subprocess.Popen(
            manage(
                "gunicornserver",
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                str(workers),
                python=python,
            ),
            cwd=files.workdir,
            env=service_environ(files),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_ready(f"http://127.0.0.1:{port}", proc, files)
    return proc


def wait_ready(url: str, proc: subprocess.Popen, files: ServiceFiles) -> None:
    """Block until ``GET /`` answers 200 and the pid file exists, or raise with the log."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited ({proc.returncode}):\n{log_tail(files)}")
        try:
            if requests.get(url + "/", timeout=2).status_code == 200 and read_pid(files):
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the service did not answer on {url} in time:\n{log_tail(files)}")


def log_tail(files: ServiceFiles, lines: int = 30) -> str:
    try:
        return "\n".join(files.server_log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def read_pid(files: ServiceFiles) -> int | None:
    """The gunicorn master's pid from the pid file, when that process still runs."""
    try:
        pid = int(files.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def stop(files: ServiceFiles, timeout: float = 30.0) -> bool:
    """SIGTERM the master of the pid file and wait for it; False when nothing ran."""
    pid = read_pid(files)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)  # start() gave it its own session: the group is its own
    return True


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie child of ours counts as gone)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def get_token(keystone: dict[str, Any], user: str = "admin") -> str:
    """A project-scoped token of a testbed user, issued by Keystone itself."""
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    return session.Session(auth=v3.Password(auth_url=keystone["url"], **keystone[user])).get_token()


class Api:
    """Minimal HTTP client of the service: a base URL and an optional token."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        token = self.token if token is None else token
        if token:
            headers["X-Auth-Token"] = token
        return requests.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)

    def wait_task(self, location: str, timeout: float = 300.0) -> dict[str, Any]:
        """Poll a task until it leaves ``syncing``; its final representation."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.call("GET", location).json()
            if task.get("status") != "syncing":
                return task
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {location} still syncing after {timeout:.0f}s")
            time.sleep(0.5)
