"""The warning about a configuration file whose credentials other local users can read.

Passwords in the core configuration are only base64-encoded, so the file mode is what
protects them; the loader warns (it does not refuse) when the mode lets others read them.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from glancesync.cli import main
from glancesync.config import load_config

CREDENTIAL = base64.b64encode(b"s3cret-pw").decode()
WITH_CREDENTIAL = f"""
[main]
master_region = Valladolid

[master]
credential = user,{CREDENTIAL},http://ks:5000/v3,tenant1
"""
WITH_PASSWORD_KEYS = """
[main]
master_region = Valladolid

[master]
user = user
password = plain
keystone_url = http://ks:5000/v3
tenant = tenant1
"""
WITHOUT_CREDENTIAL = """
[main]
master_region = Valladolid
"""
ENV = {
    "OS_USERNAME": "u",
    "OS_PASSWORD": "p",
    "OS_AUTH_URL": "http://ks:5000/v3",
    "OS_TENANT_NAME": "t",
}


def warning_for(path: Path) -> str:
    readable = "holds credentials and is readable by other users; chmod 600 it"
    return f"Configuration file {path} {readable}"


def write(tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "glancesync.conf"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o666])
@pytest.mark.parametrize("text", [WITH_CREDENTIAL, WITH_PASSWORD_KEYS])
def test_credentials_readable_by_others_warn(tmp_path, text, mode):
    path = write(tmp_path, text, mode)
    config = load_config(path=str(path), environ={})
    assert config.warnings == [warning_for(path)]


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_private_file_does_not_warn(tmp_path, mode):
    path = write(tmp_path, WITH_CREDENTIAL, mode)
    assert load_config(path=str(path), environ={}).warnings == []


def test_file_without_credentials_does_not_warn(tmp_path):
    """Credentials from OS_* variables leave nothing secret in the file."""
    path = write(tmp_path, WITHOUT_CREDENTIAL, 0o644)
    assert load_config(path=str(path), environ=ENV).warnings == []


def test_found_through_glancesync_config(tmp_path):
    path = write(tmp_path, WITH_CREDENTIAL, 0o644)
    config = load_config(environ={"GLANCESYNC_CONFIG": str(path)})
    assert warning_for(path) in config.warnings


def test_text_named_after_a_file_checks_that_file(tmp_path):
    """The service reads the text itself and passes the path (app/regions.py)."""
    path = write(tmp_path, WITH_CREDENTIAL, 0o644)
    config = load_config(text=path.read_text(), path=str(path), environ={})
    assert config.warnings == [warning_for(path)]


def test_text_without_a_real_file_does_not_warn():
    config = load_config(text=WITH_CREDENTIAL, path="/nonexistent/glancesync.conf", environ={})
    assert config.warnings == []


def test_warning_never_quotes_the_secret(tmp_path):
    path = write(tmp_path, WITH_CREDENTIAL, 0o644)
    for warning in load_config(path=str(path), environ={}).warnings:
        assert "s3cret-pw" not in warning and CREDENTIAL not in warning


def test_cli_prints_the_warning(tmp_path, monkeypatch, capsys):
    """The CLI logs config warnings as ``WARNING:<text>`` before doing anything else."""
    path = write(tmp_path, WITH_CREDENTIAL, 0o644)
    monkeypatch.setenv("GLANCESYNC_CONFIG", str(path))
    monkeypatch.setenv("GLANCESYNC_MOCKPERSISTENT_PATH", str(tmp_path / "store"))
    monkeypatch.delenv("GLANCESYNC_USE_MOCK", raising=False)
    main(["--show-regions"])
    captured = capsys.readouterr()
    assert f"WARNING:{warning_for(path)}" in (captured.out + captured.err).splitlines()


def test_service_logs_the_warning(tmp_path, caplog):
    """The REST service loads the core configuration lazily and logs its warnings."""
    from app.regions import Core

    path = write(tmp_path, WITH_CREDENTIAL, 0o644)
    with caplog.at_level(logging.WARNING, logger="GlanceSync-API"):
        Core(str(path))._load()
    assert warning_for(path) in caplog.messages
