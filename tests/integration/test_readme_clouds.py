"""The three examples of README "Connecting to your clouds", run as they are written.

Each block is taken from README.md and run by bash with only ``TESTBED_DIR`` (plus PATH
and a fresh HOME) set, against the testbed's TLS fronts, private CA, application
credentials, clouds.yaml and openrc files. Each ends with a sync whose result is checked
in Glance itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_glance import region_images, unique

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_glance")]

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```sh\n(.*?)```", re.S)


def readme_examples() -> dict[str, str]:
    return dict(EXAMPLE.findall(README.read_text()))


def test_the_readme_has_the_three_examples():
    assert list(readme_examples()) == ["password-ca", "application-credential", "clouds-yaml"]


@pytest.mark.parametrize(
    ("example", "regions", "synced"),
    [
        ("password-ca", "Lannion Trento", "Trento"),
        ("application-credential", "Lannion Trento", "Lannion"),
        ("clouds-yaml", "Lannion Trento madrid:Madrid", "Madrid"),
    ],
)
def test_readme_example(example, regions, synced, testbed, tmp_path, add_image, glance):
    name = unique(example)
    made = add_image(name)
    environ = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "TESTBED_DIR": str(testbed.workdir),
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", readme_examples()[example]],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == regions
    assert "ERROR" not in proc.stdout + proc.stderr
    assert region_images(glance(synced))[name]["checksum"] == made.md5
