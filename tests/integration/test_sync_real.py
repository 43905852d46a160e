"""The core engine and the CLI over the real backend and the testbed (reference 6, 7).

Master region Spain2; Trento and Lannion share its Keystone; Madrid is the region of a
second Keystone, configured as target ``other``. Every test starts from empty regions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_glance import MASTER, config_text, download, region_images, unique

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_glance")]

REPO = Path(__file__).resolve().parents[2]


def sync(gs, region: str, **kwargs):
    result = gs.sync_region(region, **kwargs)
    assert result is not None
    return result


# --------------------------------------------------------------------------- one region


def test_upload_then_region_is_synchronized(engine, add_image, glance):
    name = unique("base")
    made = add_image(name, size=3000, min_ram=256, type="base", nid="7")
    add_image(unique("private"), public=False)
    gs, log = engine()
    result = sync(gs, "Trento")
    assert not result.failed, log.lines
    assert log.lines == [
        f"INFO:Trento: Uploading image {name} (0.00 MB)",
        "INFO:Trento: Image uploaded.",
        "INFO:Trento:   Total uploaded to region: 0 (MB) ",
    ]
    images = region_images(glance("Trento"))
    assert list(images) == [name]
    image = images[name]
    assert (image["checksum"], image["visibility"], image["min_ram"]) == (made.md5, "public", 256)
    assert (image["type"], image["nid"]) == ("base", "7")
    log.clear()
    assert not sync(gs, "Trento").failed
    assert log.lines == ["INFO:Trento: Region is synchronized."]


def test_metadata_update(engine, add_image, glance):
    name = unique("meta")
    made = add_image(name, type="base", old="1")
    gs, log = engine()
    sync(gs, "Lannion")
    region_id = region_images(glance("Lannion"))[name]["id"]
    glance(MASTER).images.update(made.id, remove_props=["old"], type="app", new="yes")
    log.clear()
    assert not sync(gs, "Lannion").failed
    assert f"INFO:Lannion: Updating the metadata of image {name}" in log.lines
    image = region_images(glance("Lannion"))[name]
    assert image["id"] == region_id
    assert (image["type"], image["new"], "old" in image) == ("app", "yes", False)


def test_replace(engine, add_image, glance):
    name = unique("repl")
    made = add_image(name)
    old = add_image(name, region="Trento")
    gs, log = engine(master="replace = any\n")
    assert not sync(gs, "Trento").failed, log.lines
    assert log.lines[0] == f"INFO:Trento: Replacing image {name} (0.00 MB)"
    images = list(glance("Trento").images.list())
    assert len(images) == 1 and images[0]["id"] != old.id
    assert download(glance("Trento"), images[0]["id"]) == made.data


def test_rename(engine, add_image, glance):
    name = unique("ren")
    made = add_image(name)
    old = add_image(name, region="Trento", type="legacy")
    gs, log = engine(master="rename = any\n")
    assert not sync(gs, "Trento").failed, log.lines
    assert log.lines[0] == f"INFO:Trento: Renaming and replacing image {name} (0.00 MB)"
    images = region_images(glance("Trento"))
    assert images[name]["checksum"] == made.md5
    renamed = images[f"{name}.old"]
    assert (renamed["id"], renamed["visibility"], renamed["type"]) == (old.id, "private", "legacy")


def test_obsolete_region_image_is_renamed(engine, add_image, glance):
    base = unique("ubuntu")
    data = os.urandom(2048)
    add_image(f"{base}_obsolete", data=data, public=False, sdc_aware="true", type="base")
    region = add_image(base, region="Trento", data=data, type="base")
    gs, log = engine(master="obsolete_syncprops = sdc_aware\n")
    assert not sync(gs, "Trento").failed, log.lines
    assert f"INFO:Trento: updating obsolete image {base}_obsolete" in log.lines
    image = glance("Trento").images.get(region.id)
    assert (image["name"], image["visibility"], image["sdc_aware"]) == (
        f"{base}_obsolete",
        "private",
        "true",
    )


def test_ami_ids_are_remapped(engine, add_image, glance):
    kernel = add_image(unique("kern"), size=1000, disk_format="aki", container_format="aki")
    ramdisk = add_image(unique("ramd"), size=6000, disk_format="ari", container_format="ari")
    machine = add_image(
        unique("ami"),
        size=5000,
        disk_format="ami",
        container_format="ami",
        kernel_id=kernel.id,
        ramdisk_id=ramdisk.id,
    )
    gs, log = engine()
    assert not sync(gs, "Trento").failed, log.lines
    # the machine image (5000 B) goes before its ramdisk (6000 B): pass 3 sets ramdisk_id
    # (reference 6.3)
    assert (
        f"WARNING:Trento: Not found {ramdisk.name} on region. "
        f"It should be ramdisk_id of image {machine.name}"
    ) in log.lines
    images = region_images(glance("Trento"))
    region_machine = images[machine.name]
    assert region_machine["kernel_id"] == images[kernel.name]["id"] != kernel.id
    assert region_machine["ramdisk_id"] == images[ramdisk.name]["id"] != ramdisk.id
    assert region_machine["disk_format"] == "ami"
    log.clear()
    sync(gs, "Trento")
    assert log.lines == ["INFO:Trento: Region is synchronized."]


def test_forcesynced_private_image_stays_private(engine, add_image, glance):
    made = add_image(unique("forced"), public=False, protected=True)
    gs, log = engine(master=f"forcesyncs = {made.id}\n")
    assert not sync(gs, "Lannion").failed, log.lines
    image = region_images(glance("Lannion"))[made.name]
    assert (image["visibility"], image["protected"]) == ("private", True)


def test_second_target(engine, add_image, glance, tb_info):
    made = add_image(unique("far"))
    gs, log = engine(other="")
    assert not sync(gs, "other:Madrid").failed, log.lines
    assert log.lines[0] == f"INFO:other:Madrid: Uploading image {made.name} (0.00 MB)"
    image = region_images(glance("Madrid"))[made.name]
    assert image["owner"] == tb_info["keystones"]["keystone-2"]["admin_project_id"]
    assert image["checksum"] == made.md5


def test_images_dir_source(engine, add_image, glance, images_dir):
    made = add_image(unique("local"))
    (images_dir / made.id).write_bytes(made.data)
    (images_dir / made.id).chmod(0o600)
    gs, log = engine()
    assert not sync(gs, "Trento").failed, log.lines
    assert region_images(glance("Trento"))[made.name]["checksum"] == made.md5


def test_mismatching_local_file_fails_the_region(engine, add_image, glance, images_dir):
    made = add_image(unique("stale"))
    (images_dir / made.id).write_bytes(b"\0" * 2048)
    gs, log = engine()
    result = sync(gs, "Trento")
    assert result.failed
    assert log.lines[-1].startswith(
        f"ERROR:Trento: Upload of {made.name} Failed. Cause: checksum mismatch (expected {made.md5}"
    )
    assert region_images(glance("Trento")) == {}


# --------------------------------------------------------------------------- faults


def test_server_killed_mid_run(engine, add_image, glance, testbed, restart_after):
    made = add_image(unique("crash"), size=3 * 1024 * 1024)
    gs, log = engine()

    def progress(full: str, name: str, size: int):
        def callback(sent: int) -> None:
            if full == "Trento" and "glance-Trento" not in restart_after:
                restart_after.append("glance-Trento")
                testbed.kill_server("glance-Trento")

        return callback

    trento = sync(gs, "Trento", progress=progress)
    assert trento.failed
    assert trento.error.startswith(f"Trento: Upload of {made.name} Failed. Cause: ")
    assert log.lines[-1] == f"ERROR:{trento.error}"
    assert not sync(gs, "Lannion").failed
    assert region_images(glance("Lannion"))[made.name]["checksum"] == made.md5
    again = sync(gs, "Trento")
    assert again.error.startswith("Trento: Error retrieving image list. Cause: ")


# --------------------------------------------------------------------------- CLI


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
    env.update(GLANCESYNC_CONFIG=str(config), PYTHONPATH=str(REPO))
    exe = shutil.which("glancesync")
    command = [exe] if exe else [sys.executable, "-m", "glancesync"]
    return subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=120, cwd=config.parent
    )


def test_cli_end_to_end(tb_info, add_image, images_dir, tmp_path, testbed):
    name = unique("cli")
    add_image(name)
    config = tmp_path / "glancesync.conf"
    config.write_text(config_text(tb_info, images_dir, other=""))
    config.chmod(0o600)  # it holds credentials: the CLI warns otherwise

    regions = cli(config, "--show-regions")
    assert (regions.returncode, regions.stdout) == (0, "Lannion Trento other:Madrid\n")

    before = cli(config, "--show-status", "Trento", "other:Madrid")
    assert before.returncode == 0, before.stderr
    assert (
        before.stdout == f"pending_upload,Trento,{name}\n\npending_upload,other:Madrid,{name}\n\n"
    )

    run = cli(config, "Trento", "other:Madrid")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines() == [
        "======Master is Spain2",
        "======Trento",
        f"INFO:Trento: Uploading image {name} (0.00 MB)",
        "INFO:Trento: Image uploaded.",
        "INFO:Trento:   Total uploaded to region: 0 (MB) ",
        "======other:Madrid",
        f"INFO:other:Madrid: Uploading image {name} (0.00 MB)",
        "INFO:other:Madrid: Image uploaded.",
        "INFO:other:Madrid:   Total uploaded to region: 0 (MB) ",
    ]

    parallel = cli(config, "--parallel", "Lannion")
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    assert "Region Lannion has finished\n" in parallel.stdout
    (folder,) = tmp_path.glob("sync_*")
    assert "Lannion: Image uploaded." in (folder / "Lannion.txt").read_text()

    after = cli(config, "--show-status", "Trento", "other:Madrid", "Lannion")
    assert after.returncode == 0, after.stderr
    assert after.stdout == f"ok,Trento,{name}\n\nok,other:Madrid,{name}\n\nok,Lannion,{name}\n\n"


def test_cli_stopped_server_fails_only_its_region(
    tb_info, add_image, images_dir, tmp_path, testbed, restart_after
):
    name = unique("down")
    add_image(name)
    config = tmp_path / "glancesync.conf"
    config.write_text(config_text(tb_info, images_dir))
    config.chmod(0o600)
    restart_after.append("glance-Lannion")
    testbed.stop_server("glance-Lannion")
    run = cli(config, "Lannion", "Trento")
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert lines[1] == "======Lannion"
    assert lines[2].startswith("ERROR:Lannion: Error retrieving image list. Cause: ")
    assert lines[3:] == [
        "======Trento",
        f"INFO:Trento: Uploading image {name} (0.00 MB)",
        "INFO:Trento: Image uploaded.",
        "INFO:Trento:   Total uploaded to region: 0 (MB) ",
    ]
