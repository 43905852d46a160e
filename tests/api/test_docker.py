"""docker/ without a container engine (issue 12 item 5): the compose file read by a YAML
parser and checked for what it must hold, and the image's command sequence (``db
upgrade`` then the server) run as an unprivileged user over a read-only copy of the code,
with the Dockerfile's own ENV and CMD. Building the image is not tested here (no engine,
no base image on this machine)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.manage_process import wait_for_server
from tests.support.network import free_port
from tests.support.service_files import SERVER_CFG

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
NOBODY = 65534


def dockerfile() -> dict:
    """ENV (name -> value), CMD (the exec list) and the instructions of the Dockerfile."""
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
    env: dict[str, str] = {}
    for line in lines:
        if line.startswith("ENV "):
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                env[key] = value
    (cmd,) = [json.loads(line[4:]) for line in lines if line.startswith("CMD ")]
    return {"env": env, "cmd": cmd, "instructions": {line.split()[0] for line in lines}}


def test_the_compose_file_upgrades_once_before_the_service_starts():
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    services = compose["services"]
    migrate, service = services["migrate"], services["glancesync"]
    assert migrate["command"][-2:] == ["db", "upgrade"] and migrate["restart"] == "no"
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert service["command"][-1] == "gunicornserver"
    for name in ("migrate", "glancesync"):  # the same image, settings and database
        assert services[name]["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert services[name]["environment"]["GLANCESYNCAPP_DATABASE_URL"].startswith(
            "postgresql://"
        )
    assert "healthcheck" in services["db"] and "pgdata" in compose["volumes"]


def test_the_dockerfile_declares_health_volume_user_and_pinned_dependencies():
    image = dockerfile()
    assert {"HEALTHCHECK", "VOLUME", "USER", "WORKDIR"} <= image["instructions"]
    text = (DOCKER / "Dockerfile").read_text()
    assert "-c /opt/glancesync/docker/constraints.txt" in text
    pins = [
        line
        for line in (DOCKER / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert pins and all("==" in line for line in pins)
    assert {"Flask", "gunicorn", "concurrent-log-handler"} <= {p.split("==")[0] for p in pins}
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests/"} <= set(ignored)
    logging_cfg = (DOCKER / "fiware-glancesync-logging.cfg").read_text()
    assert "args = (sys.stdout,)" in logging_cfg and "FileHandler" not in logging_cfg


@pytest.fixture
def root() -> Iterator[Path]:
    """A folder the unprivileged user can reach (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="glancesync-image-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def image_tree(root: Path, port: int) -> dict[str, Path]:
    """/opt/glancesync (read-only code), /etc/fiware.d and /var/lib/glancesync under root."""
    code = root / "opt" / "glancesync"
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", "tests", "bench", "demo")
    shutil.copytree(REPO, code, ignore=ignore)
    subprocess.run(["chmod", "-R", "a-w,a+rX", str(code)], check=True)
    etc = root / "etc" / "fiware.d"
    etc.mkdir(parents=True)
    server = SERVER_CFG.format(password="pw") + "\n[gunicorn]\nWORKERS = 1\n"
    server = server.replace("[glancesync]\n", f"[glancesync]\nHOST = 127.0.0.1\nPORT = {port}\n")
    (etc / "fiware-glancesync.cfg").write_text(server)
    shutil.copy(DOCKER / "fiware-glancesync-logging.cfg", etc)
    data = root / "var" / "lib" / "glancesync"
    data.mkdir(parents=True)
    os.chown(data, NOBODY, NOBODY)
    for folder in (root / "opt", root / "etc", etc, root / "var", root / "var" / "lib"):
        folder.chmod(0o755)
    return {"code": code, "etc": etc, "data": data}


def interpreter(root: Path) -> tuple[str, str]:
    """A Python of this version the unprivileged user can run (this venv's may live under
    /root, mode 700), and a copy of this venv's site-packages under ``root`` for it (same
    version, same ABI): the checkout itself may be in a folder only root can enter (a
    clone in a ``mktemp -d``), so the image's user is given nothing of it but copies."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        p for p in (f"/usr/bin/{version}", f"/usr/local/bin/{version}") if Path(p).exists()
    ]
    if not candidates:
        pytest.fail(f"no {version} outside /root for the unprivileged user")
    (site,) = [p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)]
    readable = root / "site-packages"
    ignore = shutil.ignore_patterns("__pycache__", "__editable__*")
    shutil.copytree(site, readable, ignore=ignore, copy_function=link_or_copy, symlinks=True)
    return candidates[0], str(readable)


def link_or_copy(source: str, target: str) -> None:
    """A hard link (instant, no space) where both are on one file system, else a copy.
    The link's folders are root's own, mode 755: the user reads it whatever the source's
    folders allow. The files keep their mode (pip's are world-readable)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def test_the_image_command_runs_as_an_unprivileged_user_on_read_only_code(root):
    port = free_port()
    tree = image_tree(root, port)
    image = dockerfile()
    python, site = interpreter(root)
    env = {"PATH": os.environ["PATH"], "HOME": str(tree["data"]), "PYTHONPATH": site}
    for key, value in image["env"].items():
        env[key] = value.replace("/etc/fiware.d", str(tree["etc"])).replace(
            "/var/lib/glancesync", str(tree["data"])
        )
    command = [
        part.replace("/opt/glancesync", str(tree["code"])).replace("python ", f"{python} ")
        for part in image["cmd"]
    ]
    before = sorted(str(p) for p in tree["code"].rglob("*"))
    process = subprocess.Popen(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command],
        cwd=tree["data"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        info = wait_for_server(port, process, timeout=60)
        assert info["owner"] == "Test Owner"
        assert (tree["data"] / "glancesyncapi.db").is_file()  # made by db upgrade
        uid_line = Path(f"/proc/{process.pid}/status").read_text().split("Uid:")[1].split()
        assert uid_line[0] == str(NOBODY)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode(errors="replace")
    assert sorted(str(p) for p in tree["code"].rglob("*")) == before  # nothing written
    assert "Booting worker" in output or "Listening at" in output, output[-2000:]
    assert not (tree["data"] / "glancesync-api.log").exists()  # logs go to stdout


def test_the_compose_file_has_a_broker_and_workers_for_the_celery_shape():
    services = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())["services"]
    broker, worker, service = services["broker"], services["worker"], services["glancesync"]
    assert broker["image"].startswith("rabbitmq:") and "healthcheck" in broker
    assert broker["profiles"] == worker["profiles"] == ["celery"]  # threads by default
    assert worker["command"][1:3] == ["/opt/glancesync/manage.py", "worker"]
    assert worker["depends_on"]["broker"] == {"condition": "service_healthy"}
    assert worker["environment"] == service["environment"]  # same database and broker
    assert service["environment"]["GLANCESYNCAPP_BROKER_URL"] == "${GLANCESYNC_BROKER:-}"


def test_the_compose_file_has_a_listener_rabbitmq_4_and_no_password():
    """Issue 24: ``listen`` beside the service, RabbitMQ 4, passwords from docker/.env."""
    text = (DOCKER / "docker-compose.yml").read_text()
    services = yaml.safe_load(text)["services"]
    listen = services["listen"]
    assert listen["command"][-1] == "listen" and listen["profiles"] == ["listen"]
    assert listen["environment"] == services["glancesync"]["environment"]
    assert listen["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert int(services["broker"]["image"].split(":")[1].split(".")[0]) >= 4
    assert int(services["db"]["image"].split(":")[1].split(".")[0]) >= 17
    assert "RABBITMQ_DEFAULT_PASS" in services["broker"]["environment"]
    for secret in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD"):
        assert f"${{{secret}:?" in text  # required from docker/.env, no default
        assert f"{secret}=" in (DOCKER / "env.example").read_text()
    assert "glancesync:glancesync@" not in text
    assert "docker/.env" in (REPO / ".gitignore").read_text().split()
