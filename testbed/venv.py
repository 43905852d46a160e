"""The testbed's own virtualenv with Keystone, Glance and gunicorn.

Keystone and Glance pin many libraries, so they live in a venv of their own, cached
outside the repo and keyed by the hash of ``constraints.txt`` so a re-run reuses it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from testbed.errors import TestbedError

HERE = Path(__file__).resolve().parent
CONSTRAINTS = HERE / "constraints.txt"
REQUIREMENTS = ["keystone==30.0.0", "glance==33.0.0", "gunicorn"]
MARKER = ".testbed-ready"


def constraints_hash() -> str:
    """Short hash of the constraints file: a new freeze gives a new venv."""
    return hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()[:12]


def venv_path() -> Path:
    """Where the venv lives: $GLANCESYNC_TESTBED_VENV or the user cache folder."""
    override = os.environ.get("GLANCESYNC_TESTBED_VENV")
    if override:
        return Path(override).expanduser().resolve()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "glancesync-testbed" / f"venv-{constraints_hash()}"


def venv_bin(venv: Path, name: str) -> Path:
    return venv / "bin" / name


def is_ready(venv: Path) -> bool:
    return (venv / MARKER).is_file() and venv_bin(venv, "gunicorn").exists()


def ensure_venv(quiet: bool = True) -> Path:
    """Create and fill the venv unless a finished one is already there.

    A lock file serialises concurrent callers (e.g. two pytest sessions); the marker is
    written last, so a half-built venv from an interrupted run is rebuilt.
    """
    venv = venv_path()
    if is_ready(venv):
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_ready(venv):
            return venv
        if venv.exists():
            shutil.rmtree(venv)
        _run([sys.executable, "-m", "venv", str(venv)], "create the venv")
        pip = [str(venv_bin(venv, "python")), "-m", "pip", "install", "--disable-pip-version-check"]
        if quiet:
            pip.append("-q")
        _run([*pip, "-c", str(CONSTRAINTS), *REQUIREMENTS], "install keystone and glance")
        (venv / MARKER).write_text(constraints_hash() + "\n")
    return venv


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise TestbedError(f"could not {what} ({' '.join(cmd[:4])} ...):\n{tail}")
