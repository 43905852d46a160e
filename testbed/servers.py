"""Process management for the gunicorn-run Keystone and Glance servers.

Each server runs detached in its own session (process group = master pid), so it
survives the CLI that started it and a whole group (master + workers) can be killed.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from testbed.errors import TestbedError

WSGI_DIR = Path(__file__).resolve().parent / "wsgi"
WSGI_APPS = {"keystone": "tb_keystone:application", "glance": "tb_glance:application"}
CONFIG_ENV = {"keystone": "OS_KEYSTONE_CONFIG_DIR", "glance": "OS_GLANCE_CONFIG_DIR"}

# Popen objects of servers started by this process, so they can be reaped (no zombies).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass
class Server:
    """Everything needed to (re)start one server with the same port and config."""

    name: str
    kind: str  # "keystone", "glance" or "tls" (a TLS relay in front of another server)
    port: int
    conf_dir: str
    log: str
    pid: int | None = None
    threads: int = 8
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        scheme = "https" if self.kind == "tls" else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Server:
        return cls(**data)  # type: ignore[arg-type]


def free_port() -> int:
    """A port the kernel says is free on 127.0.0.1 now (tiny race until gunicorn binds)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_port_free(port: int, name: str) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise TestbedError(f"{name}: cannot bind 127.0.0.1:{port}: {exc.strerror}") from None


def server_env(server: Server) -> dict[str, str]:
    """The product env minus anything that would leak its packages into the venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("OS_")
    }
    if server.kind in CONFIG_ENV:
        env[CONFIG_ENV[server.kind]] = server.conf_dir
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _relay_argv(server: Server, venv: Path) -> list[str]:
    """A TLS relay (``testbed/tlsrelay.py``, stdlib only) run by the testbed venv's Python."""
    extra = server.extra
    return [
        str(venv / "bin" / "python"),
        str(Path(__file__).resolve().parent / "tlsrelay.py"),
        "--listen",
        str(server.port),
        "--target",
        extra["target"],
        "--cert",
        extra["cert"],
        "--key",
        extra["key"],
    ]


def launch(server: Server, venv: Path) -> int:
    """Start the server's gunicorn master (or TLS relay) in the background; returns its pid."""
    check_port_free(server.port, server.name)
    argv = _relay_argv(server, venv) if server.kind == "tls" else _gunicorn_argv(server, venv)
    Path(server.log).parent.mkdir(parents=True, exist_ok=True)
    Path(server.conf_dir).mkdir(parents=True, exist_ok=True)
    with open(server.log, "ab") as log:
        log.write(f"\n==== starting {server.name} on {server.url} ====\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_env(server),
            cwd=server.conf_dir,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    server.pid = proc.pid
    return proc.pid


def _gunicorn_argv(server: Server, venv: Path) -> list[str]:
    return [
        str(venv / "bin" / "gunicorn"),
        "--bind",
        f"127.0.0.1:{server.port}",
        "--workers",
        "1",
        "--worker-class",
        "gthread",
        "--threads",
        str(server.threads),
        "--timeout",
        "600",
        "--graceful-timeout",
        "5",
        "--no-control-socket",
        "--pythonpath",
        str(WSGI_DIR),
        "--error-logfile",
        "-",
        "--name",
        server.name,
        WSGI_APPS[server.kind],
    ]


def alive(pid: int | None) -> bool:
    """True if the process runs (zombies count as dead)."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def answers(url: str, timeout: float = 2.0) -> bool:
    """True if an HTTP server answers at url (any status code).

    A TLS front is only asked whether it relays: its certificate is not checked here.
    """
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def log_tail(path: str, lines: int = 25) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(server: Server, timeout: float = 120.0) -> None:
    """Block until the server answers HTTP, or raise with the tail of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(server.pid):
            raise TestbedError(
                f"{server.name} exited during start-up; last lines of {server.log}:\n"
                f"{log_tail(server.log)}"
            )
        if answers(server.url + "/"):
            return
        time.sleep(0.3)
    raise TestbedError(
        f"{server.name} did not answer on {server.url} within {timeout:.0f}s; "
        f"last lines of {server.log}:\n{log_tail(server.log)}"
    )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the server's whole process group (master and workers)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except OSError as exc:  # not a group leader after all: signal the pid only
        if exc.errno != errno.EPERM:
            raise
        os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return not alive(pid)


def _wait_port_closed(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.1)


def stop(server: Server, timeout: float = 10.0) -> None:
    """Graceful stop (SIGTERM to the master), then SIGKILL to whatever is left."""
    pid = server.pid
    if pid and alive(pid):
        _signal_group(pid, signal.SIGCONT)  # a frozen server would ignore SIGTERM
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            _signal_group(pid, signal.SIGKILL)
            _wait_gone(pid, 5)
    if pid:
        _signal_group(pid, signal.SIGKILL)  # stray workers, if any
        _CHILDREN.pop(pid, None)
    server.pid = None
    _wait_port_closed(server.port)


def kill(server: Server) -> None:
    """SIGKILL the whole group at once: a crash, for fault tests."""
    pid = server.pid
    if pid:
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid, 5)
        _CHILDREN.pop(pid, None)
    server.pid = None
    _wait_port_closed(server.port)


def freeze(server: Server, frozen: bool = True) -> None:
    """SIGSTOP (or SIGCONT) the group: the port accepts connections but nothing answers."""
    if server.pid and alive(server.pid):
        _signal_group(server.pid, signal.SIGSTOP if frozen else signal.SIGCONT)
