"""Region names reaching file names, lock folders and files, spreadsheet formulas in
backups, the metrics folder (issue 22 item 5)."""

from __future__ import annotations

import os
import stat
import tempfile

import pytest

from glancesync.backends import csvfile
from glancesync.filenames import file_part
from glancesync.image import Image
from glancesync.parallel import close_logger, region_logger
from glancesync.regionlock import RegionLock, lock_path, usable_lock_dir

HOSTILE = ["../../etc/passwd", "..", ".hidden", "a/b", "a\\b", "nul\x00byte", "tab\tline\n", ""]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_region_name_becomes_one_plain_file_name(name):
    part = file_part(name)
    assert part and "/" not in part and "\\" not in part and not part.startswith(".")
    assert all(ord(c) >= 32 for c in part)


def test_ordinary_names_are_kept():
    for name in ("Burgos", "other:Madrid", "Región-1_a.b"):
        assert file_part(name) == name


def test_a_very_long_name_is_shortened_and_stays_distinct():
    a, b = file_part("x" * 400 + "a"), file_part("x" * 400 + "b")
    assert a != b and len(a.encode()) <= 150


def test_logs_backups_and_locks_stay_in_their_folder(tmp_path):
    name = "../escaped"
    (tmp_path / "run").mkdir()
    log = region_logger(str(tmp_path / "run"), name, 0)
    try:
        log.info("hello")
    finally:
        close_logger(log)
    assert not (tmp_path / "escaped.txt").exists()
    assert len(os.listdir(tmp_path / "run")) == 1
    assert "/" not in csvfile.backup_file_name(name)
    assert os.path.dirname(lock_path(str(tmp_path), "key", name)) == str(tmp_path)


# -- lock folders and files ----------------------------------------------------------------
@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return tmp_path


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_lock_folder_of_another_user_is_not_used(temp_root):
    theirs = temp_root / "theirs"
    theirs.mkdir(mode=0o777)
    os.chmod(theirs, 0o777)  # writable by all, but no sticky bit
    os.chown(theirs, 12345, 12345)
    assert usable_lock_dir(str(theirs)) == str(temp_root / "glancesync-locks")


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_shared_sticky_lock_folder_is_used(temp_root):
    shared = temp_root / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    os.chown(shared, 12345, 12345)
    assert usable_lock_dir(str(shared)) == str(shared)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_fallback_folder_made_by_someone_else_is_refused(temp_root):
    fallback = temp_root / "glancesync-locks"
    fallback.mkdir()
    os.chmod(fallback, 0o777)
    os.chown(fallback, 12345, 12345)
    blocker = temp_root / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="lock folder"):
        usable_lock_dir(str(blocker / "locks"))


def test_a_lock_file_that_is_a_symlink_is_not_followed(tmp_path):
    target = tmp_path / "precious"
    target.write_text("data")
    before = target.stat().st_mtime_ns
    link = tmp_path / "r.lock"
    link.symlink_to(target)
    lock = RegionLock(str(link))
    with pytest.raises(OSError):
        lock.acquire(0)
    assert target.read_text() == "data" and target.stat().st_mtime_ns == before


def test_release_touches_the_locked_file_not_the_path(tmp_path):
    path = tmp_path / "r.lock"
    lock = RegionLock(str(path))
    lock.acquire(0)
    os.utime(path, (1, 1))
    os.rename(path, tmp_path / "moved.lock")
    lock.release()
    assert (tmp_path / "moved.lock").stat().st_mtime > 1
    assert not path.exists()


# -- formulas in backups -------------------------------------------------------------------
FORMULAS = ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "'=already", "''+x", "'plain"]


@pytest.mark.parametrize("name", FORMULAS)
def test_backups_neutralise_formulas_and_read_them_back(name):
    image = Image(
        name=name,
        id="-id",
        region="Burgos",
        status="active",
        size=1,
        checksum="@c",
        owner="=o",
        is_public=True,
        user_properties={},
    )
    line = csvfile.format_line(image)
    for cell in line.rstrip("\n").split(","):
        assert cell[:1] not in ("=", "+", "-", "@")
    (back,) = csvfile.load_text(line, "Burgos")
    assert (back.name, back.id, back.checksum, back.owner) == (name, "-id", "@c", "=o")


# -- the metrics folder --------------------------------------------------------------------
def test_metrics_folder_deletes_only_metric_files(tmp_path, monkeypatch):
    from app.gunicorn import MULTIPROC_VAR, metrics_folder

    folder = tmp_path / "metrics"
    folder.mkdir()
    for name in ("counter_123.db", "gauge_livesum_123.db", "histogram_9.db", "tasks.db"):
        (folder / name).write_text("")
    monkeypatch.setenv(MULTIPROC_VAR, str(folder))
    assert metrics_folder() == (str(folder), False)
    assert sorted(os.listdir(folder)) == ["tasks.db"]
    assert stat.S_ISDIR(folder.stat().st_mode)
