"""GlanceBackend against the real testbed: Keystone v3 catalog, Glance v2 list/upload/update/delete.

reference 1.4 (image model), 6.4 (image data), 6.6 (error texts), 7.3 (region lists).
"""

from __future__ import annotations

import time
import tracemalloc

import pytest
from fixtures_glance import MASTER, download, region_images, unique

from glancesync.backends.glance import UPLOAD_MARKER, GlanceBackend
from glancesync.errors import BackendError, RegionNotFound
from glancesync.image import Image

pytestmark = pytest.mark.integration


def backend(config, target: str = "master", **kwargs) -> GlanceBackend:
    return GlanceBackend(config.targets[target], config, **kwargs)


def master_view(b: GlanceBackend, image_id: str) -> Image:
    return next(i for i in b.list_images(MASTER) if i.id == image_id)


def upload_from_master(b: GlanceBackend, region: str, master: Image, **kwargs) -> Image:
    source = b.image_source(MASTER, master)
    return b.upload(region, master, master.is_public, master.user_properties, source, **kwargs)


# --------------------------------------------------------------------------- keystone


def test_regions_are_the_catalog_image_regions_sorted(make_config, tb_info):
    config = make_config(other="")
    assert backend(config).regions() == ["Lannion", "Spain2", "Trento"]
    assert backend(config, "other").regions() == ["Madrid"]
    assert backend(config).tenant_id() == tb_info["keystones"]["keystone-1"]["admin_project_id"]


def test_nothing_is_contacted_before_first_use(make_config):
    config = make_config(cred={"keystone_url": "http://127.0.0.1:9/"})
    b = backend(config)  # a dead URL: building the backend must not fail
    with pytest.raises(BackendError, match=r"^Trento: Error retrieving image list\. Cause: "):
        b.list_images("Trento")


def test_wrong_password_fails_without_leaking_it(make_config):
    secret = "not-the-right-pw-1234"
    config = make_config(cred={"password": secret})
    with pytest.raises(BackendError) as info:
        backend(config).list_images("Trento")
    message = str(info.value)
    assert message.startswith("Trento: Error retrieving image list. Cause: ")
    assert "401" in message and secret not in message


# --------------------------------------------------------------------------- listing


@pytest.mark.usefixtures("clean_glance")
def test_list_reads_every_page_and_maps_records(make_config, add_image, glance):
    made = [add_image(unique("page")) for _ in range(4)]
    private = add_image(unique("priv"), public=False, min_ram=128, type="base", release="7")
    b = backend(make_config(), page_size=2)
    images = {i.id: i for i in b.list_images(MASTER)}
    assert set(images) == {m.id for m in [*made, private]}
    image = images[private.id]
    assert (image.name, image.region, image.is_public, image.status) == (
        private.name,
        MASTER,
        False,
        "active",
    )
    assert image.checksum == private.md5 and image.size == 2048
    assert image.os_hash_algo == "sha512" and image.os_hash_value
    assert (image.disk_format, image.container_format, image.min_ram) == ("raw", "bare", 128)
    assert image.user_properties == {"type": "base", "release": "7"}
    assert images[made[0].id].is_public


@pytest.mark.usefixtures("clean_glance")
def test_list_of_other_target_uses_full_name(make_config, add_image):
    add_image(unique("madrid"), region="Madrid")
    images = backend(make_config(other=""), "other").list_images("Madrid")
    assert [i.region for i in images] == ["other:Madrid"]


def test_unknown_region_is_a_listing_error(make_config):
    with pytest.raises(RegionNotFound) as info:
        backend(make_config(other=""), "other").list_images("Trento")
    assert str(info.value) == "other:Trento: Error retrieving image list. Cause: region not found"


def test_listing_timeout(make_config, frozen):
    b = backend(make_config(master="list_images_timeout = 1\n"))
    b.regions()  # authenticate first: only Glance is frozen
    frozen("glance-Lannion")
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        b.list_images("Lannion")
    assert str(info.value) == "Lannion: Timeout while retrieving image list."
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- upload


@pytest.mark.usefixtures("clean_glance")
def test_upload_streams_from_master_api_and_keeps_fields(make_config, add_image, glance):
    made = add_image(
        unique("full"),
        size=2_500_000,
        disk_format="ami",
        container_format="ami",
        min_ram=512,
        min_disk=2,
        protected=True,
        type="base",
        nid="42",
    )
    b = backend(make_config())
    master = master_view(b, made.id)
    sent: list[int] = []
    new = b.upload(
        "Trento",
        master,
        False,
        {"type": "base", "n": 3},
        b.image_source(MASTER, master),
        sent.append,
    )
    assert sum(sent) == 2_500_000 and len(sent) > 1  # progress per chunk
    assert (new.name, new.region, new.is_public, new.status) == (
        made.name,
        "Trento",
        False,
        "active",
    )
    assert (new.checksum, new.os_hash_value) == (master.checksum, master.os_hash_value)
    assert (new.disk_format, new.container_format, new.min_ram, new.min_disk) == (
        "ami",
        "ami",
        512,
        2,
    )
    assert new.protected
    assert new.user_properties == {  # strings; marker gone; source recorded (reference 1.4)
        "type": "base",
        "n": "3",
        "glancesync_source_id": made.id,
        "glancesync_source_hash": made.md5,
    }
    record = glance("Trento").images.get(new.id)
    assert UPLOAD_MARKER not in record and record["protected"]
    assert download(glance("Trento"), new.id) == made.data


@pytest.mark.usefixtures("clean_glance")
def test_upload_reads_images_dir_file_when_present(make_config, add_image, glance, images_dir):
    made = add_image(unique("local"), size=5000)
    (images_dir / made.id).write_bytes(made.data)
    glance(MASTER).images.deactivate(made.id)  # the API can no longer serve the data
    b = backend(make_config())
    master = b.list_images(MASTER)[0]
    new = upload_from_master(b, "Lannion", master)
    assert new.checksum == made.md5 and new.is_public
    assert download(glance("Lannion"), new.id) == made.data


@pytest.mark.usefixtures("clean_glance")
def test_upload_to_other_target(make_config, add_image, tb_info):
    made = add_image(unique("far"))
    config = make_config(other="")
    master = master_view(backend(config), made.id)
    new = backend(config, "other").upload(
        "Madrid", master, True, {}, backend(config).image_source(MASTER, master)
    )
    assert new.region == "other:Madrid" and new.checksum == made.md5
    assert new.owner == tb_info["keystones"]["keystone-2"]["admin_project_id"]


@pytest.mark.usefixtures("clean_glance")
def test_checksum_mismatch_deletes_the_new_image(make_config, add_image, glance, images_dir):
    made = add_image(unique("bad"), size=4000)
    (images_dir / made.id).write_bytes(b"x" * 4000)  # a stale local copy
    b = backend(make_config())
    master = master_view(b, made.id)
    with pytest.raises(BackendError) as info:
        upload_from_master(b, "Trento", master)
    expected = (
        f"Trento: Upload of {made.name} Failed. Cause: checksum mismatch (expected {made.md5}, got "
    )
    assert str(info.value).startswith(expected)
    assert region_images(glance("Trento")) == {}


@pytest.mark.usefixtures("clean_glance")
def test_rejected_upload_leaves_no_half_image(make_config, add_image, glance):
    made = add_image(unique("fmt"))
    b = backend(make_config())
    master = master_view(b, made.id)
    master.disk_format = "qcow2"  # Glance refuses raw data declared as qcow2
    with pytest.raises(BackendError, match=rf"^Trento: Upload of {made.name} Failed\. Cause: "):
        upload_from_master(b, "Trento", master)
    assert region_images(glance("Trento")) == {}


@pytest.mark.usefixtures("clean_glance")
def test_unreadable_local_file(make_config, add_image, glance, images_dir):
    made = add_image(unique("dir"))
    (images_dir / made.id).mkdir()  # exists, cannot be read as a file (even by root)
    config = make_config(other="")
    master = master_view(backend(config), made.id)
    source = backend(config).image_source(MASTER, master)
    with pytest.raises(BackendError) as info:
        backend(config, "other").upload("Madrid", master, True, {}, source)
    assert str(info.value) == (
        f"other:Madrid: Cannot open the image {made.name} to upload. Cause: Is a directory"
    )
    assert region_images(glance("Madrid")) == {}


@pytest.mark.usefixtures("clean_glance")
def test_upload_memory_does_not_grow_with_the_image(make_config, add_image, images_dir):
    size = 24 * 1024 * 1024
    made = add_image(unique("big"), size=size)
    (images_dir / made.id).write_bytes(made.data)
    b = backend(make_config())
    master = master_view(b, made.id)
    del made
    tracemalloc.start()
    try:
        new = upload_from_master(b, "Trento", master)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert new.size == size
    assert peak < 8 * 1024 * 1024


# --------------------------------------------------------------------------- update, delete


@pytest.mark.usefixtures("clean_glance")
def test_update_sets_exactly_name_visibility_and_properties(make_config, add_image, glance):
    made = add_image(unique("upd"), region="Trento", public=False, keep="1", drop="x", change="a")
    b = backend(make_config())
    image = b.list_images("Trento")[0]
    kernel = "0c6c8f4e-6f6b-4c1e-9a3e-2b7f3e4b5a6c"
    new_name = unique("renamed")
    props = {"keep": "1", "change": "b", "added": 5, "kernel_id": kernel}
    updated = b.update("Trento", image, new_name, True, props)
    assert (updated.id, updated.name, updated.is_public) == (made.id, new_name, True)
    assert updated.user_properties == {
        "keep": "1",
        "change": "b",
        "added": "5",
        "kernel_id": kernel,
    }
    again = b.update("Trento", updated, new_name, True, props)  # nothing differs: no change
    assert again.user_properties == updated.user_properties
    cleared = b.update("Trento", again, new_name, False, {})
    assert cleared.user_properties == {} and not cleared.is_public
    assert glance("Trento").images.get(made.id)["visibility"] == "private"


@pytest.mark.usefixtures("clean_glance")
def test_update_error(make_config):
    b = backend(make_config())
    ghost = Image(name="ghost", id="0c6c8f4e-6f6b-4c1e-9a3e-2b7f3e4b5a6c")
    with pytest.raises(BackendError, match=r"^Trento: Update of ghost2 failed\. Cause: .*404"):
        b.update("Trento", ghost, "ghost2", True, {})


@pytest.mark.usefixtures("clean_glance")
def test_delete(make_config, add_image, glance):
    made = add_image(unique("del"), region="Lannion")
    b = backend(make_config())
    b.delete("Lannion", made.id)
    assert region_images(glance("Lannion")) == {}
    with pytest.raises(BackendError) as info:
        b.delete("Lannion", made.id)
    assert str(info.value).startswith(f"Lannion: Deletion of image {made.id} Failed. Cause: ")
