"""Exact messages of the command line (issue 11, item 6): where warnings go, what an
operator's mistake prints, and the help text (reference 7.2)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

import glancesync
from glancesync.backends.csvfile import read_folder
from tests.support.cli_files import BASIC_CONFIG, assert_one_line_error


def help_text() -> str:
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "glancesync", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


# --- configuration warnings ------------------------------------------------------------


def test_config_readable_by_others_warns_on_stderr_not_before_the_master_line(run):
    run.scenario("insync")
    run.config.chmod(0o644)
    code, out, err = run("Burgos")
    assert code == 0
    assert out.startswith("======Master is Valladolid\n"), out
    assert "readable by other users" not in out
    assert f"WARNING:Configuration file {run.config} holds credentials" in err


# --- command-line arguments ------------------------------------------------------------


def test_config_given_twice_keeps_both_lists(run):
    run.scenario("basic")
    code, out, _ = run(
        "--show-status",
        "--config",
        "other.metadata_condition=image.name=='img05'",
        "--config",
        "master.metadata_condition=image.name=='img01'",
        "--",
        "Burgos",
        "other:Madrid",
    )
    assert code == 0
    assert out == ("ok,Burgos,img01\n\npending_upload,other:Madrid,img05\n\n"), (
        "the first --config was dropped"
    )


def listening_socket() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    return server


def connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


@pytest.mark.parametrize(
    "args",
    [
        ["Burgos", "nosuch:Madrid"],
        ["master:", "nosuch:Madrid"],
        ["--show-status", "master:", "nosuch:"],
        ["--make-backup", "Burgos", "nosuch:Madrid"],
    ],
)
def test_unknown_target_is_reported_before_any_network_access(run, monkeypatch, args):
    """The real backend, its Keystone a socket of this test: nobody may connect to it."""
    server = listening_socket()
    port = server.getsockname()[1]
    monkeypatch.delenv("GLANCESYNC_MOCKPERSISTENT_PATH")
    run.write_config(BASIC_CONFIG.replace("http://server:5000", f"http://127.0.0.1:{port}"))
    try:
        assert_one_line_error(*run(*args), "unknown target 'nosuch'")
        assert connections(server) == 0
    finally:
        server.close()


@pytest.mark.parametrize("region", ["a/b", "other:../Madrid", "nul\x00"])
@pytest.mark.parametrize("mode", [["--parallel"], ["--make-backup"], []])
def test_region_name_that_cannot_name_a_file_is_a_usage_error(run, region, mode):
    """Region names become file names (parallel logs, backups); '/' would escape them."""
    run.scenario("basic")
    assert_one_line_error(*run(*mode, region), "region name", repr(region))
    assert not list(run.tmp.glob("sync_*")) and not list(run.tmp.glob("backup_glance_*"))


# --- folders the run writes ------------------------------------------------------------


@pytest.fixture
def gone_cwd(run, tmp_path, monkeypatch):
    """A working folder deleted under the command, so nothing can be created in it
    (root ignores file modes, so a chmod would not do)."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    return gone


@pytest.mark.parametrize(
    "args, what",
    [(["--make-backup"], "backup folder"), (["--parallel", "Burgos"], "run folder")],
)
def test_unwritable_folder_is_one_error_line(run, gone_cwd, args, what):
    run.scenario("basic")
    code, out, err = run(*args)
    assert code == 2
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"ERROR: cannot create the {what} "), err
    assert len([line for line in lines if line.startswith("ERROR")]) == 1


def test_backup_error_names_the_region_once(run, tmp_path):
    run.scenario("basic")
    code, _, err = run("--make-backup", "Burgos", "other:Nowhere")
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("ERROR")]
    assert errors == [
        "ERROR:other:Nowhere:Error retrieving images from region. Cause region not found"
    ]
    backups = [p for p in tmp_path.iterdir() if p.name.startswith("backup_glance_")]
    assert sorted(read_folder(str(backups[0]))) == ["Burgos", "Valladolid"]


# --- help and version ------------------------------------------------------------------


def test_help_has_no_old_typos():
    text = help_text()
    for typo in ("don not", "do no sync", "do not upload actually"):
        assert typo not in text


def test_help_explains_every_mode():
    text = " ".join(help_text().split())
    assert "--dry-run print what a sync would do, without changing anything" in text
    assert "--show-status print the status of each synchronisable image as CSV" in text
    assert "--show-regions print the regions" in text
    assert "--make-backup save the metadata of every image of the regions" in text
    assert "--parallel sync up to max_children regions at a time" in text


def test_help_epilog_gives_examples_config_lookup_and_exit_codes():
    text = help_text()
    epilog = text[text.index("examples:") :]
    assert "glancesync --dry-run Burgos" in epilog
    assert "glancesync --config main.master_region=Spain2 -- Trento Lannion" in epilog
    for place in ("GLANCESYNC_CONFIG", "/etc/glancesync.conf", "OS_REGION_NAME"):
        assert place in epilog
    assert "0  every region synchronised" in epilog
    assert "1  at least one region failed" in epilog
    assert "2  wrong command line or configuration" in epilog


def test_version(capsys):
    from glancesync.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"glancesync {glancesync.__version__}\n"


def test_version_through_the_console_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "glancesync", "--version"], capture_output=True, text=True
    )
    assert (out.returncode, out.stdout) == (0, f"glancesync {glancesync.__version__}\n")
