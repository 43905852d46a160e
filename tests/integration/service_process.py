"""The REST service as operators run it: ``manage.py gunicornserver`` on PostgreSQL,
validating tokens with the testbed's Keystone and syncing the testbed's Glance servers.

Used by the fault and load tests and by ``bench/load.py``. The gunicorn master runs in
its own session, so its pid is also the process group of its workers: ``kill9`` kills
all of them at once, as a crashed host would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import requests
from fixtures_glance import config_text

from tests.support.network import free_port
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
TOKEN_HEADER = "X-Auth-Token"


SETTINGS = """\
[openstack]
KEYSTONE_URL = {keystone_url}
ADM_USER = {user}
ADM_PASS = {password}
ADM_TENANT_NAME = {project}

[glancesync]
HOST = 127.0.0.1
PORT = {port}

[database]
URL = {database}

[gunicorn]
WORKERS = {workers}
PIDFILE = {folder}/gunicorn.pid
LOGLEVEL = warning
{gunicorn_extra}"""


class ServiceProcess:
    """One service with its own folder (logs, pid file), PostgreSQL database and port."""

    def __init__(
        self,
        tb_info: dict[str, Any],
        folder: Path,
        images_dir: Path,
        workers: int = 2,
        keystone_url: str | None = None,
        database: str | None = None,
        gunicorn: dict[str, Any] | None = None,
        flask: dict[str, Any] | None = None,
        core_main: str = "",
        prefix: list[str] | None = None,
    ) -> None:
        """``database``: share another instance's; ``gunicorn``: extra ``[gunicorn]`` keys;
        ``flask``: settings of the GLANCESYNCAPP_CONFIG file (HEARTBEAT_INTERVAL...);
        ``core_main``: extra ``[main]`` lines of the core config (``lock_dir``);
        ``prefix``: a command the server runs under (``unshare --pid ...``)."""
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.shared_database = database is not None
        self.database = database or f"glancesync_svc_{uuid.uuid4().hex[:10]}"
        self.gunicorn = "".join(f"{k} = {v}\n" for k, v in (gunicorn or {}).items())
        self.flask = flask or {}
        self.core_main = core_main
        self.prefix = prefix or []
        self.admin = tb_info["keystones"]["keystone-1"]["admin"]
        self.secrets = [ks["admin"]["password"] for ks in tb_info["keystones"].values()]
        self.process: subprocess.Popen | None = None
        self._local = threading.local()
        self._write_files(tb_info, images_dir, workers, keystone_url)
        if not self.shared_database:
            self._create_database()

    # -- set-up --------------------------------------------------------------------------
    def _write_files(
        self, tb_info: dict[str, Any], images_dir: Path, workers: int, keystone_url: str | None
    ) -> None:
        settings = self.folder / "fiware-glancesync.cfg"
        settings.write_text(
            SETTINGS.format(
                keystone_url=keystone_url or tb_info["keystones"]["keystone-1"]["url"],
                user=self.admin["username"],
                password=self.admin["password"],
                project=self.admin["project_name"],
                port=self.port,
                database=f"{POSTGRES}/{self.database}",
                workers=workers,
                folder=self.folder,
                gunicorn_extra=self.gunicorn,
            )
        )
        core = self.folder / "glancesync.conf"
        core.write_text(config_text(tb_info, images_dir, main=self.core_main))
        core.chmod(0o600)
        for path in (settings,):
            path.chmod(0o600)
        self.environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GLANCESYNC")},
            "GLANCESYNC_SETTINGS_FILE": str(settings),
            "GLANCESYNC_LOGGING_SETTINGS_FILE": str(REPO / "fiware-glancesync-logging.cfg"),
            "GLANCESYNC_CONFIG": str(core),
        }
        if self.flask:
            flask_file = self.folder / "config.py"
            flask_file.write_text("".join(f"{k} = {v!r}\n" for k, v in self.flask.items()))
            self.environ["GLANCESYNCAPP_CONFIG"] = str(flask_file)

    def _create_database(self) -> None:
        with psycopg.connect(f"{POSTGRES}/test", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        self._manage("db", "upgrade")

    def drop_database(self) -> None:
        with psycopg.connect(f"{POSTGRES}/test", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def _manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args],
            cwd=self.folder,
            env=self.environ,
            check=True,
            capture_output=True,
            timeout=60,
        )

    # -- process -------------------------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[ServiceProcess]:
        """Started for the block; stopped and its database dropped afterwards (unless it
        is another instance's)."""
        self.start()
        try:
            yield self
        finally:
            self.stop()
            if not self.shared_database:
                self.drop_database()

    def start(self, timeout: float = 60) -> None:
        """Start gunicorn and wait until every worker answers."""
        with open(self.folder / "stdout.log", "ab") as out:
            self.process = subprocess.Popen(
                [*self.prefix, sys.executable, str(REPO / "manage.py"), "gunicornserver"],
                cwd=self.folder,
                env=self.environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(lambda: self.get("/").status_code == 200, timeout)
        except AssertionError:
            raise AssertionError(f"the service did not start:\n{self.logs()[-3000:]}") from None

    def worker_pids(self) -> set[int]:
        assert self.process is not None
        master = str(self.process.pid)
        pids = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if stat.rsplit(")", 1)[1].split()[1] == master:
                    pids.add(int(entry.name))
        return pids

    def kill9(self) -> None:
        """SIGKILL the master and its workers, as a crash would: nothing cleans up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._local = threading.local()  # drop the connections to the dead server

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    # -- requests ------------------------------------------------------------------------
    @property
    def http(self) -> requests.Session:
        """One keep-alive session per client thread (a Session is not thread-safe)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def get(self, path: str, token: str | None = None) -> requests.Response:
        headers = {TOKEN_HEADER: token} if token else {}
        return self.http.get(self.url + path, headers=headers, timeout=20)

    def post(self, path: str, token: str) -> requests.Response:
        return self.http.post(self.url + path, headers={TOKEN_HEADER: token}, timeout=20)

    def count_tasks(self) -> int:
        with psycopg.connect(f"{POSTGRES}/{self.database}") as conn:
            return conn.execute("SELECT count(*) FROM task").fetchone()[0]

    def wait_task(self, location: str, token: str, timeout: float) -> dict:
        """The task once it is no longer ``syncing``."""
        body: dict = {}

        def finished() -> bool:
            nonlocal body
            body = self.get(location, token).json()
            return body["status"] not in ("queued", "syncing")

        wait_until(finished, timeout, step=0.2)
        return body

    def get_task_row(self, location: str) -> dict:
        """The stored task, read straight from the database (the service may be down)."""
        task_id = location.rsplit("/", 1)[1]
        with psycopg.connect(f"{POSTGRES}/{self.database}") as conn:
            row = conn.execute(
                "SELECT status, message, worker FROM task WHERE task_id = %s", (task_id,)
            ).fetchone()
        assert row is not None
        return dict(zip(("status", "message", "worker"), row, strict=True))

    def logs(self) -> str:
        parts = [self.folder / "stdout.log", *sorted(self.folder.glob("glancesync-api.log*"))]
        return "\n".join(path.read_text(errors="replace") for path in parts if path.exists())

    def assert_no_secret_logged(self, tokens: Iterable[str]) -> None:
        text = self.logs()
        assert text, "the service logged nothing: the check would prove nothing"
        for secret in [*self.secrets, *tokens]:
            assert secret not in text, "a password or token is in the service's logs"


class CountingProxy:
    """A loopback HTTP proxy in front of Keystone that counts token validations.

    Keystone itself keeps no access log in the testbed, so the service is pointed at this
    proxy instead: every ``GET /v3/auth/tokens`` it forwards is one validation Keystone
    received, keyed by the validated token (``X-Subject-Token``).
    """

    def __init__(self, target: str) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.target = target.rstrip("/")
        self.validations: dict[str, int] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                proxy.forward(self)

            def do_POST(self) -> None:  # noqa: N802
                proxy.forward(self)

            def do_HEAD(self) -> None:  # noqa: N802
                proxy.forward(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def forward(self, handler: Any) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
        if handler.command == "GET" and handler.path.startswith("/v3/auth/tokens"):
            subject = handler.headers.get("X-Subject-Token", "")
            with self._lock:
                self.validations[subject] = self.validations.get(subject, 0) + 1
        answer = requests.request(
            handler.command, self.target + handler.path, headers=headers, data=body, timeout=30
        )
        content = answer.content
        handler.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                handler.send_header(key, value.replace(self.target, self.url))
        content = content.replace(self.target.encode(), self.url.encode())
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(content)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
