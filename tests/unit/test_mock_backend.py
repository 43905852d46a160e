"""The mock backend and its store (reference 8.1, 8.3, 8.4) and make_backends."""

from __future__ import annotations

import threading

import pytest

from glancesync.backends import make_backends, mock_store_from_env
from glancesync.backends.csvfile import read_backup, write_backup
from glancesync.backends.mock import MockBackend, MockImageSource, MockStore
from glancesync.config import Config, MainOptions, Target
from glancesync.credentials import Connection
from glancesync.errors import BackendError, ConfigError
from glancesync.image import SOURCE_HASH, SOURCE_ID, Image

MASTER = Target(name="master", connection=Connection("", tenant="tenant1"))
OTHER = Target(name="other", connection=Connection("", tenant="tenant2"), tenant_id="abc")


def master_image(n: int = 1, **changes) -> Image:
    base = Image(
        name=f"image{n:02d}",
        id=f"{n:03d}",
        region="Valladolid",
        owner="tenant1id",
        is_public=True,
        checksum=f"c{n}",
        size=1000 + n,
        user_properties={"type": "baseimage"},
        os_hash_algo="sha512",
        os_hash_value=f"h{n}",
        disk_format="qcow2",
        container_format="bare",
        min_ram=512,
        min_disk=2,
    )
    return base.copy(**changes)


@pytest.fixture
def store() -> MockStore:
    return MockStore(
        {
            "Valladolid": [master_image(1), master_image(2)],
            "Burgos": [],
            "other:Madrid": [],
            "other:Cadiz": [],
        }
    )


def test_regions_per_target(store):
    assert MockBackend(MASTER, store).regions() == ["Burgos", "Valladolid"]
    assert MockBackend(OTHER, store).regions() == ["Cadiz", "Madrid"]
    assert MockBackend(Target(name="none"), store).regions() == []


def test_tenant_id():
    assert MockBackend(MASTER, MockStore()).tenant_id() == "tenant1id"
    assert MockBackend(OTHER, MockStore()).tenant_id() == "abc"


def test_full_name(store):
    assert MockBackend(MASTER, store).full_name("Burgos") == "Burgos"
    assert MockBackend(OTHER, store).full_name("Madrid") == "other:Madrid"


def test_list_images_returns_copies_in_order(store):
    backend = MockBackend(MASTER, store)
    listed = backend.list_images("Valladolid")
    assert [i.id for i in listed] == ["001", "002"]
    listed[0].name = "changed"
    listed[0].user_properties["x"] = 1
    assert backend.list_images("Valladolid")[0] == master_image(1)


def test_unknown_region(store):
    with pytest.raises(BackendError) as info:
        MockBackend(OTHER, store).list_images("Nowhere")
    assert str(info.value) == "other:Nowhere: Error retrieving image list. Cause: region not found"


def test_upload_ids_owner_and_fields(store):
    backend = MockBackend(OTHER, store)
    seen = []
    uploaded = backend.upload(
        "Madrid", master_image(1), False, {"type": "x"}, MockImageSource(5), seen.append
    )
    assert seen == [1001]
    assert uploaded == Image(
        name="image01",
        id="1$image01",
        region="other:Madrid",
        owner="abc",
        is_public=False,
        checksum="c1",
        size=1001,
        status="active",
        user_properties={"type": "x", SOURCE_ID: "001", SOURCE_HASH: "c1"},
        os_hash_algo="sha512",
        os_hash_value="h1",
        disk_format="qcow2",
        container_format="bare",
        min_ram=512,
        min_disk=2,
    )
    assert backend.list_images("Madrid") == [uploaded]
    second = backend.upload("Madrid", master_image(1), True, {}, None)
    third = backend.upload("Madrid", master_image(5), True, {}, None)
    assert (second.id, third.id) == ("2$image01", "1$image05")


def test_upload_seq_skips_ids_taken_by_renamed_images(store):
    store.add_region("Burgos", [Image(name="renamed", id="1$image01")])
    uploaded = MockBackend(MASTER, store).upload("Burgos", master_image(1), True, {}, None)
    assert uploaded.id == "2$image01" and uploaded.owner == "tenant1id"


def test_upload_keeps_no_reference_to_the_properties(store):
    props = {"a": [1]}
    backend = MockBackend(MASTER, store)
    backend.upload("Burgos", master_image(1), True, props, None)
    props["a"].append(2)
    assert backend.list_images("Burgos")[0].user_properties["a"] == [1]


def test_update_sets_name_visibility_and_properties(store):
    backend = MockBackend(MASTER, store)
    image = backend.list_images("Valladolid")[0]
    updated = backend.update("Valladolid", image, "new", False, {"k": "v"})
    assert (updated.name, updated.is_public, updated.user_properties) == ("new", False, {"k": "v"})
    assert updated.owner == "tenant1id" and updated.id == "001"
    assert backend.list_images("Valladolid")[0] == updated


def test_update_unknown_image(store):
    with pytest.raises(BackendError) as info:
        MockBackend(MASTER, store).update("Burgos", Image(name="x", id="9"), "img", True, {})
    assert str(info.value) == "Burgos: Update of img failed. Cause: image not found"


def test_delete(store):
    backend = MockBackend(MASTER, store)
    backend.delete("Valladolid", "001")
    assert [i.id for i in backend.list_images("Valladolid")] == ["002"]
    with pytest.raises(BackendError) as info:
        backend.delete("Valladolid", "001")
    assert str(info.value) == "Valladolid: Deletion of image 001 Failed. Cause: image not found"


def test_image_source_has_size_and_no_data(store):
    source = MockBackend(MASTER, store).image_source("Valladolid", master_image(1))
    assert source.size == 1001 and list(source.chunks()) == []


def test_parallel_uploads_get_distinct_ids(store):
    backend = MockBackend(MASTER, store)

    def work():
        for _ in range(20):
            backend.upload("Burgos", master_image(1), True, {}, None)

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [i.id for i in backend.list_images("Burgos")]
    assert sorted(ids) == sorted(f"{n}$image01" for n in range(1, 101))


# ---------------------------------------------------------------- faults


def test_fail_on_write_after_n(store):
    store.fail_on("other:Madrid", "write", after=2)
    backend = MockBackend(OTHER, store)
    first = backend.upload("Madrid", master_image(1), True, {}, None)
    backend.update("Madrid", first, "image01", False, {})
    with pytest.raises(BackendError) as info:
        backend.upload("Madrid", master_image(2), True, {}, None)
    assert str(info.value) == "other:Madrid: Upload of image02 Failed. Cause: injected fault"
    with pytest.raises(BackendError, match="Deletion of image 1\\$image01 Failed"):
        backend.delete("Madrid", first.id)
    assert [i.id for i in backend.list_images("Madrid")] == ["1$image01"]
    assert MockBackend(MASTER, store).upload("Burgos", master_image(1), True, {}, None)


@pytest.mark.parametrize(
    "operation, message",
    [
        ("list", "Valladolid: Error retrieving image list. Cause: boom"),
        ("timeout", "Valladolid: Timeout while retrieving image list."),
        ("open", "Valladolid: Cannot open the image image01 to upload. Cause: boom"),
        ("upload", "Valladolid: Upload of image01 Failed. Cause: boom"),
        ("update", "Valladolid: Update of image01 failed. Cause: boom"),
        ("delete", "Valladolid: Deletion of image 001 Failed. Cause: boom"),
    ],
)
def test_each_operation_fails_with_its_message(store, operation, message):
    store.fail_on("Valladolid", operation, cause="boom")
    backend = MockBackend(MASTER, store)
    calls = {
        "list": lambda: backend.list_images("Valladolid"),
        "timeout": lambda: backend.list_images("Valladolid"),
        "open": lambda: backend.image_source("Valladolid", master_image(1)),
        "upload": lambda: backend.upload("Valladolid", master_image(1), True, {}, None),
        "update": lambda: backend.update("Valladolid", master_image(1), "image01", True, {}),
        "delete": lambda: backend.delete("Valladolid", "001"),
    }
    with pytest.raises(BackendError) as info:
        calls[operation]()
    assert str(info.value) == message
    store.clear_faults()
    calls[operation]()


def test_fail_on_rejects_unknown_operations(store):
    with pytest.raises(ValueError):
        store.fail_on("Burgos", "explode")


def test_faults_file(tmp_path):
    write_backup(str(tmp_path / "backup_Burgos.csv"), "Burgos", [])
    (tmp_path / "mock_faults").write_text("# comment\n\nBurgos,upload,1\n")
    backend = MockBackend(MASTER, MockStore.load(str(tmp_path)))
    backend.upload("Burgos", master_image(1), True, {}, None)
    with pytest.raises(BackendError, match="Upload of image02 Failed. Cause: injected fault"):
        backend.upload("Burgos", master_image(2), True, {}, None)


@pytest.mark.parametrize("line", ["Burgos,upload", "Burgos,explode,1", "Burgos,upload,x"])
def test_bad_faults_file(tmp_path, line):
    (tmp_path / "mock_faults").write_text(line + "\n")
    with pytest.raises(ConfigError, match="mock_faults: line 1"):
        MockStore.load(str(tmp_path))


# ---------------------------------------------------------------- persistence


def test_persistent_store_rewrites_the_region_file(tmp_path):
    folder = tmp_path / "persist"
    store = MockStore.persistent(str(folder))
    assert folder.is_dir() and store.region_names() == []
    store.add_region("Burgos")
    backend = MockBackend(MASTER, store)
    uploaded = backend.upload("Burgos", master_image(1), True, {"a": 1}, None)
    assert read_backup(str(folder / "backup_Burgos.csv"))[1] == [
        Image(
            name="image01",
            id="1$image01",
            region="Burgos",
            owner="tenant1id",
            is_public=True,
            checksum="c1",
            size=1001,
            user_properties={"a": 1, SOURCE_ID: "001", SOURCE_HASH: "c1"},
        )
    ]
    backend.update("Burgos", uploaded, "renamed", False, {})
    again = MockBackend(MASTER, MockStore.persistent(str(folder)))
    assert [(i.name, i.is_public) for i in again.list_images("Burgos")] == [("renamed", False)]
    again.delete("Burgos", "1$image01")
    assert (folder / "backup_Burgos.csv").read_bytes() == b""
    assert sorted(p.name for p in folder.iterdir()) == ["backup_Burgos.csv"]


# ---------------------------------------------------------------- make_backends


def config() -> Config:
    return Config(
        main=MainOptions(master_region="Valladolid"), targets={"master": MASTER, "other": OTHER}
    )


def test_use_mock_with_a_folder_shares_one_store(tmp_path):
    write_backup(str(tmp_path / "backup_Valladolid.csv"), "Valladolid", [master_image(1)])
    write_backup(str(tmp_path / "backup_other:Madrid.csv"), "other:Madrid", [])
    backends = make_backends(config(), {"GLANCESYNC_USE_MOCK": str(tmp_path)})
    assert set(backends) == {"master", "other"}
    assert backends["master"].store is backends["other"].store  # type: ignore[attr-defined]
    backends["other"].upload("Madrid", master_image(1), True, {}, None)
    assert backends["other"].list_images("Madrid")[0].owner == "abc"
    assert (tmp_path / "backup_other:Madrid.csv").read_bytes() == b""  # nothing saved


def test_use_mock_without_a_folder_is_empty():
    store = mock_store_from_env({"GLANCESYNC_USE_MOCK": "yes"})
    assert store is not None and store.region_names() == [] and store.folder is None


def test_use_mock_wins_over_persistent(tmp_path):
    env = {"GLANCESYNC_USE_MOCK": "1", "GLANCESYNC_MOCKPERSISTENT_PATH": str(tmp_path / "p")}
    assert mock_store_from_env(env).folder is None  # type: ignore[union-attr]
    assert not (tmp_path / "p").exists()


def test_persistent_path_env(tmp_path):
    store = mock_store_from_env({"GLANCESYNC_MOCKPERSISTENT_PATH": str(tmp_path / "p")})
    assert store is not None and store.folder == str(tmp_path / "p")


def test_no_mock_variables():
    assert mock_store_from_env({}) is None
    assert mock_store_from_env({"GLANCESYNC_USE_MOCK": ""}) is None


def test_bad_backup_is_a_config_error(tmp_path):
    (tmp_path / "backup_Burgos.csv").write_text("Burgos,x\n")
    with pytest.raises(ConfigError, match="backup_Burgos.csv: line 1"):
        make_backends(config(), {"GLANCESYNC_USE_MOCK": str(tmp_path)})


def test_explicit_store_is_used():
    store = MockStore({"Burgos": []})
    backends = make_backends(config(), {}, store=store)
    assert backends["master"].regions() == ["Burgos"]
