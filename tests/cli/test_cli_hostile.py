"""Property test of the whole command: whatever CSV rows the mock holds, whatever the
configuration file says and whatever arguments are typed, ``glancesync`` ends with an
exit code of 7.1 and never a traceback; a usage or configuration error is one line.

The library-level property tests are in tests/unit/test_hostile_input.py; this one goes
through ``glancesync.cli.main`` with the persistent mock, as an operator would.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glancesync import mockcli
from glancesync.cli import main
from tests.support.cli_files import BASIC_CONFIG, SCENARIOS

FAST = settings(
    max_examples=int(os.environ.get("GLANCESYNC_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

FIELD_VALUES = [
    [st.just("Burgos"), st.just("Madrid"), st.just("")],
    [st.just("img01"), st.just("img05"), st.just(""), st.just('a,b"c')],
    [st.just("1"), st.just("101"), st.just("")],
    [st.just("active"), st.just("queued"), st.just("")],
    [st.just("10485760"), st.just("-1"), st.just("1e3"), st.just("x"), st.just("")],
    [st.just("c01"), st.just("")],
    [st.just("tenant1id"), st.just(""), st.just("tenantXid")],
    [st.just("True"), st.just("false"), st.just("maybe"), st.just("")],
    [
        st.just("{}"),
        st.just("{'type': 'baseimage'}"),
        st.just("{'kernel_id': 5}"),
        st.just("{'type': None, 'nid': [1]}"),
        st.just("{1: 2}"),
        st.just("[1, 2]"),
        st.just("{'a': {1, 2}}"),
        st.just("__import__('os')"),
        st.just("{"),
    ],
]
FIELD = st.text(max_size=12)
ROW = st.tuples(*[st.one_of(*values, FIELD) for values in FIELD_VALUES]).map(list)
ROWS = st.lists(
    st.one_of(ROW, ROW.map(lambda r: r[:-1]), ROW.map(lambda r: [*r, "extra"])), max_size=4
)

CONFIG_LINES = BASIC_CONFIG.splitlines()
EDIT = st.one_of(
    st.tuples(st.just("drop"), st.integers(0, len(CONFIG_LINES) - 1), st.just("")),
    st.tuples(st.just("set"), st.integers(0, len(CONFIG_LINES) - 1), st.text(max_size=30)),
    st.tuples(
        st.just("insert"),
        st.integers(0, len(CONFIG_LINES)),
        st.sampled_from(
            [
                "[other]",
                "[a:b]",
                "max_children = 0",
                "max_children = x",
                "only_tenant_images = perhaps",
                "list_images_timeout = -1",
                "metadata_condition = image.name ==",
                "metadata_condition = image.user_properties['nid'] > 3",
                "credential = a,b",
                "  continued",
                "preferable_order = ,,",
                "replace = any",
                "nonsense",
                "=",
            ]
        )
        | st.text(max_size=30),
    ),
)
ARG = st.sampled_from(
    [
        "Burgos",
        "other:Madrid",
        "other:",
        "master:",
        ":",
        "nosuch:",
        "nosuch:X",
        "a/b",
        "other:../x",
        "Valladolid",
        "--dry-run",
        "--show-status",
        "--show-regions",
        "--make-backup",
        "--parallel",
        "--config",
        "main.max_children=2",
        "main.max_children=zero",
        "x=y",
        "novalue",
        "--",
        "-x",
    ]
) | st.text(max_size=10)


def edited_config(edits: list[tuple[str, int, str]]) -> str:
    lines = list(CONFIG_LINES)
    for kind, index, text in edits:
        index = min(index, len(lines) - (kind != "insert"))
        if index < 0:
            continue
        if kind == "drop":
            del lines[index]
        elif kind == "set":
            lines[index] = text
        else:
            lines.insert(index, text)
    return "\n".join(lines) + "\n"


def run_cli(tmp: Path, config: str, rows: list[list[str]], args: list[str]):
    store, cwd = tmp / "store", tmp / "cwd"
    for folder in (store, cwd):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(SCENARIOS / "basic", store)
    with open(store / "backup_Burgos.csv", "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    (tmp / "glancesync.conf").write_text(config)
    (tmp / "glancesync.conf").chmod(0o600)
    cwd.mkdir()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def assert_clean_end(code: int, out: str, err: str) -> None:
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in out + err
    if code == 2:
        errors = [line for line in err.splitlines() if line.startswith("ERROR: ")]
        usage = [line for line in err.splitlines() if line.startswith("glancesync: error: ")]
        assert len(errors) + len(usage) == 1, err


@FAST
@given(
    rows=ROWS,
    edits=st.lists(EDIT, max_size=3),
    args=st.lists(ARG, max_size=4),
)
def test_any_input_ends_without_traceback(tmp_path, monkeypatch, rows, edits, args):
    monkeypatch.setenv("GLANCESYNC_CONFIG", str(tmp_path / "glancesync.conf"))
    monkeypatch.setenv("GLANCESYNC_MOCKPERSISTENT_PATH", str(tmp_path / "store"))
    monkeypatch.delenv("GLANCESYNC_USE_MOCK", raising=False)
    for var in ("OS_REGION_NAME", "OS_USERNAME", "OS_PASSWORD", "OS_AUTH_URL"):
        monkeypatch.delenv(var, raising=False)
    assert_clean_end(*run_cli(tmp_path, edited_config(edits), rows, args))


@FAST
@given(rows=ROWS)
def test_any_backup_rows_end_without_traceback(tmp_path, monkeypatch, rows):
    """Every mode over the same broken rows: a CSV error stops each with one line."""
    monkeypatch.setenv("GLANCESYNC_CONFIG", str(tmp_path / "glancesync.conf"))
    monkeypatch.setenv("GLANCESYNC_MOCKPERSISTENT_PATH", str(tmp_path / "store"))
    monkeypatch.delenv("GLANCESYNC_USE_MOCK", raising=False)
    for args in (["Burgos"], ["--show-status"], ["--dry-run"]):
        assert_clean_end(*run_cli(tmp_path, BASIC_CONFIG, rows, args))


FILE_NAMES = st.sampled_from(
    ["backup_Burgos.csv", "backup_other:Madrid.csv", "backup_.csv", "backup_x.csv.bak", "notes"]
)


@FAST
@given(
    files=st.dictionaries(FILE_NAMES, ROWS, max_size=3),
    raw=st.one_of(st.none(), st.binary(max_size=40)),
    confirm=st.booleans(),
)
def test_glancesync_mock_on_any_backup_folder(tmp_path, files, raw, confirm):
    """``glancesync-mock`` validates the folder before copying: 0 and the export line, or
    2 and one line on stderr; never a traceback, and a refused load leaves no file."""
    source, target = tmp_path / "load", tmp_path / "persist"
    for folder in (source, target):
        shutil.rmtree(folder, ignore_errors=True)
    source.mkdir()
    for name, rows in files.items():
        with open(source / name, "w", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)
    if raw is not None:
        (source / "backup_Raw.csv").write_bytes(raw)
    args = ["--path", str(target), str(source)] + (["--confirm"] if confirm else [])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = mockcli.main(args)
    assert code in (0, 2) and "Traceback" not in out.getvalue() + err.getvalue()
    if code == 0:
        assert out.getvalue() == f"export GLANCESYNC_MOCKPERSISTENT_PATH={target}\n"
    else:
        assert out.getvalue() == "" and len(err.getvalue().splitlines()) == 1
        assert not target.exists() or not list(target.glob("backup_*.csv"))
