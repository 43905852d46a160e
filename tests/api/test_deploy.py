"""docs/deploy/ (issue 24 item 4): the systemd units of the API, a worker and the listener
pass ``systemd-analyze verify``, with their ``glancesync-manage`` commands pointed at this
venv's (the units' /opt/glancesync/bin is not on this machine)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"
UNITS = ("glancesync-api.service", "glancesync-worker.service", "glancesync-listen.service")


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd (see .ci/run)")
    bindir = Path(sys.executable).parent
    assert (bindir / "glancesync-manage").is_file()  # pip install -e . made it
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        assert "/opt/glancesync/bin/glancesync-manage " in text
        (tmp_path / name).write_text(text.replace("/opt/glancesync/bin/", f"{bindir}/"))
    result = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    own = [line for line in result.stderr.splitlines() if "glancesync" in line]
    assert result.returncode == 0 and not own, result.stderr


def test_each_unit_runs_its_command():
    commands = {
        name: [
            line.split("=", 1)[1]
            for line in (DEPLOY / name).read_text().splitlines()
            if line.startswith("ExecStart=")
        ]
        for name in UNITS
    }
    assert commands["glancesync-api.service"] == [
        "/opt/glancesync/bin/glancesync-manage gunicornserver"
    ]
    assert commands["glancesync-worker.service"][0].split()[1] == "worker"
    assert commands["glancesync-listen.service"][0].split()[1] == "listen"
