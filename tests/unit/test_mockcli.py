"""glancesync-mock (reference 8.5)."""

from __future__ import annotations

import os
import tempfile

import pytest

from glancesync import mockcli

LINE = "Valladolid,image01,001,active,10,c,tenant1id,True,\"{'type': 'x', 'nid': 1}\"\n"


@pytest.fixture
def scenario(tmp_path):
    folder = tmp_path / "scenario1"
    folder.mkdir()
    (folder / "backup_Valladolid.csv").write_text(LINE)
    (folder / "backup_other:Madrid.csv").write_text("")
    (folder / "config").write_text("[main]\n")
    return folder


def export_line(path) -> str:
    return f"export GLANCESYNC_MOCKPERSISTENT_PATH={os.path.abspath(path)}\n"


def test_copies_and_prints_the_export_line(scenario, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert mockcli.main(["--path", "persistent_data", str(scenario)]) == 0
    out, err = capsys.readouterr()
    assert out == export_line(tmp_path / "persistent_data") and err == ""
    copied = tmp_path / "persistent_data"
    assert sorted(p.name for p in copied.iterdir()) == [
        "backup_Valladolid.csv",
        "backup_other:Madrid.csv",
    ]
    assert (copied / "backup_Valladolid.csv").read_text() == LINE


def test_refuses_a_folder_with_backups_without_confirm(scenario, tmp_path, capsys):
    target = tmp_path / "p"
    target.mkdir()
    (target / "backup_Old.csv").write_text("")
    assert mockcli.main(["--path", str(target), str(scenario)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f'The directory "{target}" is not empty. If you are sure, pass --confirm\n'
    assert (target / "backup_Old.csv").exists()


def test_confirm_replaces_previous_backups(scenario, tmp_path, capsys):
    target = tmp_path / "p"
    target.mkdir()
    (target / "backup_Old.csv").write_text("")
    (target / "notes.txt").write_text("keep")
    assert mockcli.main(["--confirm", "--path", str(target), str(scenario)]) == 0
    assert capsys.readouterr().out == export_line(target)
    assert sorted(p.name for p in target.iterdir()) == [
        "backup_Valladolid.csv",
        "backup_other:Madrid.csv",
        "notes.txt",
    ]


def test_random_folder(scenario, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert mockcli.main(["--random", str(scenario)]) == 0
    out = capsys.readouterr().out
    path = out.strip().split("=", 1)[1]
    assert os.path.dirname(path) == str(tmp_path)
    assert os.path.basename(path).startswith("glancesync_tmp")
    assert sorted(os.listdir(path)) == ["backup_Valladolid.csv", "backup_other:Madrid.csv"]


def test_missing_initial_load(tmp_path, capsys):
    assert mockcli.main(["--path", str(tmp_path / "p"), str(tmp_path / "nope")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "with the initial load must exist" in err


def test_invalid_backup_is_rejected_before_touching_the_folder(scenario, tmp_path, capsys):
    (scenario / "backup_Burgos.csv").write_text("Burgos,x,1,active,1,,,maybe,{}\n")
    target = tmp_path / "p"
    target.mkdir()
    (target / "backup_Old.csv").write_text("")
    assert mockcli.main(["--confirm", "--path", str(target), str(scenario)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "backup_Burgos.csv: line 1: is_public must be True or False" in err
    assert (target / "backup_Old.csv").exists()


def test_path_and_random_are_exclusive(scenario, capsys):
    assert mockcli.main(["--random", "--path", "x", str(scenario)]) == 2
    assert "not allowed" in capsys.readouterr().err


def test_initial_load_is_required(capsys):
    assert mockcli.main([]) == 2


def test_loading_into_the_same_folder(scenario, capsys):
    assert mockcli.main(["--path", str(scenario), str(scenario)]) == 0
    assert capsys.readouterr().out == export_line(scenario)
    assert (scenario / "backup_Valladolid.csv").read_text() == LINE


def test_paths_with_spaces_are_shell_quoted(scenario, tmp_path, capsys):
    target = tmp_path / "with space"
    assert mockcli.main(["--path", str(target), str(scenario)]) == 0
    assert capsys.readouterr().out == f"export GLANCESYNC_MOCKPERSISTENT_PATH='{target}'\n"
