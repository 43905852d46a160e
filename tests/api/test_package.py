"""The wheel as an operator installs it (issue 24 items 1 and 5): built from the checkout,
installed with its extras into a fresh virtualenv outside the checkout (dependencies
resolved from the wheel's metadata, pinned by docker/constraints.txt as the image is),
then ``glancesync-manage db upgrade`` and ``glancesync-manage gunicornserver`` serve the
UI with its stylesheet and script from the installed package alone."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.manage_process import SERVER_VARS
from tests.support.network import free_port
from tests.support.service_files import SERVER_CFG

REPO = Path(__file__).resolve().parents[2]
CONSTRAINTS = REPO / "docker" / "constraints.txt"
# What docker/Dockerfile installs: the service, its drivers and brokers, psycopg's binary.
IMAGE_EXTRAS = "service,postgresql,mysql,redis"
IMAGE_EXTRA_REQUIREMENTS = ("psycopg[binary]",)


def run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """A venv (in a temporary folder) holding the built wheel and its dependencies."""
    root = Path(tempfile.mkdtemp(prefix="glancesync-wheel-"))
    try:
        source = root / "src"  # a clean copy: the build never writes into the checkout
        files = run("git", "ls-files", "-co", "--exclude-standard", cwd=REPO).stdout.split()
        for name in files:
            if (REPO / name).is_file():
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, source / name)
        run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", root / "dist", source)
        (wheel,) = (root / "dist").glob("glancesync-*.whl")
        run(sys.executable, "-m", "venv", root / "venv")
        pip = root / "venv" / "bin" / "pip"
        requirement = f"glancesync[{IMAGE_EXTRAS}] @ {wheel.as_uri()}"
        run(pip, "install", "-q", "-c", CONSTRAINTS, requirement, *IMAGE_EXTRA_REQUIREMENTS)
        yield root / "venv"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_dockerfile_installs_the_same_extras():
    text = (REPO / "docker" / "Dockerfile").read_text()
    assert f"[{IMAGE_EXTRAS}]" in text
    for requirement in IMAGE_EXTRA_REQUIREMENTS:
        assert f'"{requirement}"' in text


def test_the_wheel_installs_the_three_commands(installed):
    for command in ("glancesync", "glancesync-mock", "glancesync-manage"):
        assert (installed / "bin" / command).is_file()
    help_text = run(installed / "bin" / "glancesync-manage", "db", "--help").stdout
    assert "  upgrade " in help_text and "  migrate " not in help_text  # no authoring


def test_every_installed_distribution_is_pinned(installed):
    """docker/constraints.txt lists exactly what the image's install holds."""
    freeze = run(installed / "bin" / "pip", "freeze", "--exclude", "glancesync").stdout
    installed_pins = {normal(line) for line in freeze.splitlines() if "==" in line}
    pins = {
        normal(line)
        for line in CONSTRAINTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert installed_pins == pins, (installed_pins - pins, pins - installed_pins)


def normal(pin: str) -> str:
    name, _, version = pin.strip().partition("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


def test_the_installed_service_serves_the_ui(installed, tmp_path):
    port = free_port()
    settings = tmp_path / "fiware-glancesync.cfg"
    settings.write_text(
        SERVER_CFG.format(password="pw").replace(
            "[glancesync]\n", f"[glancesync]\nHOST = 127.0.0.1\nPORT = {port}\n"
        )
        + "\n[gunicorn]\nWORKERS = 1\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in SERVER_VARS}
    env.pop("PYTHONPATH", None)
    env.update(
        GLANCESYNC_SETTINGS_FILE=str(settings),
        GLANCESYNCAPP_DATABASE_URL=f"sqlite:///{tmp_path / 'api.db'}",
    )
    manage = installed / "bin" / "glancesync-manage"
    run(manage, "db", "upgrade", cwd=tmp_path, env=env, timeout=120)
    server = subprocess.Popen(
        [str(manage), "gunicornserver"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        page = fetch(f"http://127.0.0.1:{port}/ui/", server)  # the sign-in page
        assert 'href="/ui/static/ui.css"' in page, page
        # The status page's script (page.html, after signing in) is served all the same.
        script = (installed / "lib").glob("python3*/site-packages/app/ui/templates/ui/page.html")
        assert "filename='ui.js'" in next(script).read_text()
        assert "body" in fetch(f"http://127.0.0.1:{port}/ui/static/ui.css", server)
        assert "function" in fetch(f"http://127.0.0.1:{port}/ui/static/ui.js", server)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=30)


def fetch(url: str, process: subprocess.Popen, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.communicate()[0].decode(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
                return response.read().decode()
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer")
