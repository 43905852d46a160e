"""Run the real ``glancesync`` entry point in-process against a persistent mock folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from glancesync.cli import main
from tests.support.cli_files import BASIC_CONFIG, SCENARIOS


class Runner:
    """Runs ``glancesync`` with a config file and a persistent copy of a scenario."""

    def __init__(self, tmp_path: Path, monkeypatch, capsys):
        self.tmp = tmp_path
        self.monkeypatch = monkeypatch
        self.capsys = capsys
        self.store = tmp_path / "store"
        self.config = tmp_path / "glancesync.conf"
        self.write_config(BASIC_CONFIG)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("GLANCESYNC_CONFIG", str(self.config))
        monkeypatch.delenv("GLANCESYNC_USE_MOCK", raising=False)
        monkeypatch.setenv("GLANCESYNC_MOCKPERSISTENT_PATH", str(self.store))
        for var in ("OS_REGION_NAME", "OS_USERNAME", "OS_PASSWORD", "OS_AUTH_URL"):
            monkeypatch.delenv(var, raising=False)

    def scenario(self, name: str, config: str | None = None) -> None:
        shutil.rmtree(self.store, ignore_errors=True)
        shutil.copytree(SCENARIOS / name, self.store)
        scenario_config = self.store / "config"
        if config is None and scenario_config.exists():
            config = scenario_config.read_text()
        scenario_config.unlink(missing_ok=True)
        self.write_config(config if config is not None else BASIC_CONFIG)

    def write_config(self, text: str) -> None:
        """Mode 600, as operators keep it: a file readable by others adds a WARNING line."""
        self.config.write_text(text)
        self.config.chmod(0o600)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err

    def files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.store.iterdir())}


@pytest.fixture
def run(tmp_path, monkeypatch, capsys) -> Runner:
    return Runner(tmp_path, monkeypatch, capsys)
