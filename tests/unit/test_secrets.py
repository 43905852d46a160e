"""Passwords never show in a repr, a log line or an error (issue 11, item 7; 11.4).

A ``Config`` is printed by debuggers, pytest failure reports and careless log calls
(``log.debug("%r", config)``); the credential fields are hidden from dataclass reprs.
"""

from __future__ import annotations

import base64
import dataclasses
import shutil

import pytest

from glancesync.cli import main
from glancesync.config import Config, Target, load_config
from tests.support.cli_files import SCENARIOS

PLAIN = "pl41n-s3cret"
ENCODED_SECRET = "b64-s3cret"
ENCODED = base64.b64encode(ENCODED_SECRET.encode()).decode()
TEXT = f"""
[main]
master_region = Valladolid

[master]
credential = user,{ENCODED},http://server:5000/v3,tenant1

[other]
user = user2
password = {PLAIN}
keystone_url = http://server2:5000/v3
tenant = tenant2
"""
SECRETS = (PLAIN, ENCODED_SECRET, ENCODED)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_config_repr_hides_every_password():
    config = load_config(text=TEXT, environ={})
    assert config.targets["other"].connection.password == PLAIN  # really loaded...
    assert config.targets["master"].connection.password == ENCODED_SECRET
    assert_no_secret(repr(config))  # ...but never shown
    assert_no_secret(str(config))
    for target in config.targets.values():
        assert_no_secret(repr(target))


@pytest.mark.parametrize("cls", [Config, Target])
def test_every_secret_field_is_out_of_the_repr(cls):
    hidden = {f.name for f in dataclasses.fields(cls) if not f.repr}
    secret_like = {
        f.name
        for f in dataclasses.fields(cls)
        if any(word in f.name for word in ("password", "secret", "token"))
    }
    assert secret_like <= hidden


@pytest.mark.parametrize(
    "args",
    [
        ["--show-status"],
        ["--dry-run", "Burgos", "other:Madrid"],
        ["Burgos", "other:Madrid"],
        ["--show-regions", "--config", "other.credential=u,@@@,http://k/v3,t"],
        ["--show-regions", "--config", "other.credential=u,x,http://k/v3"],
    ],
)
def test_cli_output_never_holds_a_password(tmp_path, monkeypatch, capsys, args):
    store = tmp_path / "store"
    shutil.copytree(SCENARIOS / "basic", store)
    config = tmp_path / "glancesync.conf"
    config.write_text(TEXT)
    config.chmod(0o644)  # the readable-file warning must not quote it either
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GLANCESYNC_CONFIG", str(config))
    monkeypatch.setenv("GLANCESYNC_MOCKPERSISTENT_PATH", str(store))
    monkeypatch.delenv("GLANCESYNC_USE_MOCK", raising=False)
    main(args)
    out, err = capsys.readouterr()
    assert_no_secret(out + err)
