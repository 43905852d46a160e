"""Header safety checks and the qemu-img step, on small files made by ``qemu-img create``
(issue 23 item 2; README "Converting images")."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from glancesync import convert, imagecheck
from glancesync.errors import Cancelled
from glancesync.image import Image

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-utils")


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


class FileData:
    def __init__(self, path: Path):
        self.path, self.size = path, path.stat().st_size

    def chunks(self):
        yield self.path.read_bytes()


def master_of(path: Path, fmt: str) -> Image:
    data = path.read_bytes()
    return Image(
        "img", "mid", checksum=hashlib.md5(data).hexdigest(), size=len(data), disk_format=fmt
    )


def convert_only(*args) -> None:
    """Run the conversion step without an upload."""
    with convert.converted_file(*args):
        pass


def refusal(path: Path, fmt: str) -> str | None:
    head = path.read_bytes()[: imagecheck.HEADER_BYTES]
    span = imagecheck.vmdk_descriptor_span(head)
    descriptor = path.read_bytes()[span[0] : span[0] + span[1]] if span else b""
    return imagecheck.header_refusal(fmt, head, descriptor)


def test_plain_qcow2_and_sparse_vmdk_pass(tmp_path):
    qemu_img("create", "-f", "qcow2", str(tmp_path / "a.qcow2"), "1M")
    assert refusal(tmp_path / "a.qcow2", "qcow2") is None
    for kind in ("monolithicSparse", "streamOptimized"):
        qemu_img("create", "-f", "vmdk", "-o", f"subformat={kind}", str(tmp_path / "s.vmdk"), "1M")
        assert refusal(tmp_path / "s.vmdk", "vmdk") is None


def test_backing_file_and_data_file_are_refused(tmp_path):
    backed = tmp_path / "b.qcow2"
    qemu_img("create", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", str(backed), "1M")
    assert refusal(backed, "qcow2") == "qcow2 image names a backing file"
    external = tmp_path / "d.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'd.raw'}", str(external), "1M")
    assert refusal(external, "qcow2") == "qcow2 image names an external data file"
    assert "no qcow2 header" in refusal(tmp_path / "d.raw", "qcow2")


def test_vmdk_with_other_files_is_refused(tmp_path):
    flat = tmp_path / "f.vmdk"
    qemu_img("create", "-f", "vmdk", "-o", "subformat=monolithicFlat", str(flat), "1M")
    assert "single-file" in refusal(flat, "vmdk")
    info = {"virtual-size": 1, "format-specific": {"type": "vmdk", "data": {"create-type": "vmfs"}}}
    assert "vmfs" in imagecheck.info_refusal("vmdk", info)


def test_info_and_space_rules():
    assert imagecheck.info_refusal("qcow2", {"virtual-size": 5}) is None
    assert "backing" in imagecheck.info_refusal("vhd", {"backing-filename": "x", "virtual-size": 5})
    data_file = {"type": "qcow2", "data": {"data-file": "/x"}}
    assert "data file" in imagecheck.info_refusal("qcow2", {"format-specific": data_file})
    assert imagecheck.space_refusal(10, 10, "/s") is None
    assert "exceeds the free space of /s" in imagecheck.space_refusal(11, 10, "/s")


def test_qcow2_converted_to_raw_and_files_removed(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    raw = tmp_path / "src.raw"
    raw.write_bytes(b"glancesync" * 100_000)
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(tmp_path / "src.qcow2"))
    source = tmp_path / "src.qcow2"
    master = master_of(source, "qcow2")
    with convert.converted_file("R", master, "raw", FileData(source), str(spool), bool) as out:
        data = b"".join(out.chunks())
        assert out.virtual_size == len(data) >= raw.stat().st_size
        assert data.startswith(raw.read_bytes())
        assert out.md5 == hashlib.md5(data).hexdigest()
    assert os.listdir(spool) == []


def test_refused_image_names_region_and_reason(tmp_path):
    backed = tmp_path / "b.qcow2"
    qemu_img("create", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", str(backed), "1M")
    master = master_of(backed, "qcow2")
    with pytest.raises(
        convert.ConversionRefused,
        match="^R: Image img not converted: qcow2 image names a backing file$",
    ):
        convert_only("R", master, "raw", FileData(backed), str(tmp_path), bool)
    assert [p.name for p in tmp_path.iterdir()] == ["b.qcow2"]


def test_too_large_for_the_spool_is_refused(tmp_path, monkeypatch):
    source = tmp_path / "big.qcow2"
    qemu_img("create", "-f", "qcow2", str(source), "1T")
    spool = tmp_path / "spool"
    spool.mkdir()
    with pytest.raises(convert.ConversionRefused, match="exceeds the free space"):
        convert_only("R", master_of(source, "qcow2"), "raw", FileData(source), str(spool), bool)
    assert os.listdir(spool) == []


def test_cancel_kills_qemu_img_and_removes_its_file(tmp_path, monkeypatch):
    """A stand-in qemu-img that hangs: the cancel must end it and clean the spool."""
    source = tmp_path / "a.qcow2"
    qemu_img("create", "-f", "qcow2", str(source), "1M")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "qemu-img").write_text(
        '#!/bin/sh\ncase "$1" in info) exec /usr/bin/qemu-img "$@";; esac\n'
        'echo $$ > "$GS_PIDFILE"; exec sleep 60\n'
    )
    (fake / "qemu-img").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setenv("GS_PIDFILE", str(tmp_path / "pid"))
    spool = tmp_path / "spool"
    spool.mkdir()
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        convert_only(
            "R", master_of(source, "qcow2"), "raw", FileData(source), str(spool), stop.is_set
        )
    assert time.monotonic() - started < 10
    pid = int((tmp_path / "pid").read_text())
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert os.listdir(spool) == []
