"""convert_to on the testbed (issue 23 items 2 and 4; README "Converting images").

Real qcow2 images made with qemu-img in the test reach Trento as raw; a qcow2 with a
backing file is refused for that image only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures_glance import MASTER, download, region_images, unique

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("clean_glance"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-utils"),
]

MIB = 1 << 20


def qcow2_of(tmp_path: Path, raw: bytes, name: str) -> bytes:
    """A real qcow2 holding ``raw`` (qemu-img convert in the test)."""
    (tmp_path / f"{name}.raw").write_bytes(raw)
    out = tmp_path / f"{name}.qcow2"
    subprocess.run(
        [
            "qemu-img",
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            str(tmp_path / f"{name}.raw"),
            str(out),
        ],
        check=True,
    )
    return out.read_bytes()


def test_qcow2_reaches_trento_as_raw_then_rename_on_new_content(
    engine, add_image, glance, tmp_path
):
    spool = tmp_path / "spool"
    spool.mkdir()
    name = unique("conv")
    raw = os.urandom(MIB) + bytes(MIB)  # 2 MiB of virtual size, half of it zeros
    made = add_image(
        name,
        data=qcow2_of(tmp_path, raw, "first"),
        disk_format="qcow2",
        type="base",
        img_signature="c2lnbmF0dXJl",
        img_signature_hash_method="SHA-256",
    )
    settings = {"master": "convert_to = raw\n", "main": f"spool_dir = {spool}\n"}
    gs, log = engine(**settings)
    result = gs.sync_region("Trento")
    assert not result.failed, log.lines
    assert f"INFO:Trento: Converting image {name} from qcow2 to raw" in log.lines
    image = region_images(glance("Trento"))[name]
    assert (image["disk_format"], image["size"], image["virtual_size"]) == (
        "raw",
        len(raw),
        len(raw),
    )
    assert image["checksum"] == hashlib.md5(raw).hexdigest()
    assert image["glancesync_source_checksum"] == made.md5
    assert image["glancesync_converted_md5"] == image["checksum"]
    assert image["type"] == "base"
    assert not [key for key in image if key.startswith("img_signature")]
    assert download(glance("Trento"), image["id"]) == raw
    assert os.listdir(spool) == []

    log.clear()
    assert not gs.sync_region("Trento").failed
    assert log.lines == ["INFO:Trento: Region is synchronized."]
    report = {entry["name"]: entry for entry in gs.image_report("Trento")}
    assert report[name]["status"] == "ok"
    assert "qcow2 to raw" in report[name]["message"]

    # new master content under the same name: the old copy is renamed by its source checksum
    glance(MASTER).images.delete(made.id)
    newer_raw = os.urandom(MIB)
    newer = add_image(name, data=qcow2_of(tmp_path, newer_raw, "second"), disk_format="qcow2")
    gs, log = engine(master=f"convert_to = raw\nrename = {made.md5}\n", main=settings["main"])
    assert not gs.sync_region("Trento").failed, log.lines
    assert any(
        line.startswith(f"INFO:Trento: Renaming and replacing image {name} ") for line in log.lines
    )
    images = region_images(glance("Trento"))
    assert images[name]["glancesync_source_checksum"] == newer.md5
    assert images[name]["checksum"] == hashlib.md5(newer_raw).hexdigest()
    assert images[f"{name}.old"]["glancesync_source_checksum"] == made.md5
    assert images[f"{name}.old"]["visibility"] == "private"


def test_qcow2_with_backing_file_is_refused_for_that_image_only(
    engine, add_image, glance, tmp_path, images_dir
):
    """Glance refuses such an upload itself, so the master's data comes from images_dir
    (the local file of a master image is used when it exists)."""
    backed = tmp_path / "backed.qcow2"
    subprocess.run(
        [
            "qemu-img",
            "create",
            "-f",
            "qcow2",
            "-u",
            "-b",
            "/etc/passwd",
            "-F",
            "raw",
            str(backed),
            "1M",
        ],
        check=True,
    )
    bad = unique("backed")
    benign = qcow2_of(tmp_path, bytes(4096), "benign")
    record = add_image(bad, data=benign, disk_format="qcow2")
    (images_dir / record.id).write_bytes(backed.read_bytes())
    fine = unique("plainraw")
    add_image(fine, size=4096)  # raw already: a plain copy
    gs, log = engine(master="convert_to = raw\n")
    result = gs.sync_region("Trento")
    assert result.failed
    entry = {e.name: e for e in result.images}[bad]
    assert entry.result == "failed"
    assert entry.error == f"Trento: Image {bad} not converted: qcow2 image names a backing file"
    assert f"ERROR:{entry.error}" in log.lines
    images = region_images(glance("Trento"))
    assert bad not in images
    assert images[fine]["disk_format"] == "raw"
    assert "glancesync_source_checksum" not in images[fine]
