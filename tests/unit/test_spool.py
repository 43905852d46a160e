"""The ring spool of the fan-out (glancesync.spool): bounded, nameless, wrapping."""

from __future__ import annotations

import os

import pytest

from glancesync.spool import RingSpool


def test_bytes_come_back_across_the_wrap(tmp_path):
    spool = RingSpool(10, str(tmp_path))
    spool.write(0, b"abcdefgh")
    assert spool.read(2, 6) == b"cdefgh"
    spool.write(8, b"ijklmn")  # positions 8, 9 then 0..3: "abcd" is overwritten
    assert spool.read(4, 10) == b"efghijklmn"
    assert spool.size == 10


def test_disk_use_never_passes_the_capacity(tmp_path):
    spool = RingSpool(4096, str(tmp_path))
    for offset in range(0, 40_000, 1000):
        spool.write(offset, bytes([offset // 1000]) * 1000)
    assert os.fstat(spool._fd).st_size <= 4096
    assert spool.read(39_000, 1000) == bytes([39]) * 1000


def test_the_file_has_no_name_and_close_frees_it(tmp_path):
    spool = RingSpool(100, str(tmp_path))
    spool.write(0, b"x" * 100)
    assert list(tmp_path.iterdir()) == []
    spool.close()
    spool.close()  # idempotent
    assert spool.closed


def test_a_write_larger_than_the_ring_is_refused(tmp_path):
    spool = RingSpool(10, str(tmp_path))
    with pytest.raises(ValueError):
        spool.write(0, b"x" * 11)
    with pytest.raises(ValueError):
        RingSpool(0, str(tmp_path))


def test_an_unwritable_folder_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        RingSpool(10, str(tmp_path / "missing"))
