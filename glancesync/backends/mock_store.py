"""The offline mock's images: every region of every target, in memory or in a folder.

One ``MockStore`` holds every region of every target, keyed by region full name
(``Burgos``, ``other:Madrid``); a ``MockBackend`` per target (glancesync.backends.mock)
views it through that target's credential. The store is guarded by one lock because
parallel syncs run regions in threads of one process.

Stores:

* ``MockStore()`` / ``MockStore({"Burgos": [images...]})`` - in memory.
* ``MockStore.load(folder)`` - in memory, loaded from the folder's ``backup_<F>.csv``
  files (and its ``mock_faults`` file, glancesync.backends.mock_faults); nothing is saved.
* ``MockStore.persistent(folder)`` - the folder *is* the store (reference 8): loaded at start,
  the changed region's file rewritten atomically after every change.

Images keep ``protected``, ``min_ram``, ``min_disk`` and ``os_hidden`` in memory only
(Glance's defaults when loaded: the CSV format stays reference 8.2); a protected
image cannot be deleted, as in Glance. Uploads record ``glancesync_source_id`` (the
master id) and ``glancesync_source_hash`` (the master's checksum: the mock keeps no data
to hash), reference 1.4.

Members and retention: an image's ``shared`` visibility and members live in memory as
the image's fields and in the backup's properties column as reserved properties
(``glancesync_visibility``, ``glancesync_members``: csvfile).

Stores (multi-store regions, glancesync.stores): every region has one store, ``default``,
unless ``set_stores(region_full, names)`` gives it others (the first its default).
Images keep their ``stores`` in memory only (never in the backups): empty as loaded or
uploaded without a store, which ``in_stores`` shows as the default store of a region
given stores, and as no store at all elsewhere (as a Glance without multi-store).
``upload(store=...)`` and ``copy_to_stores`` (a copy-image that always succeeds for a
store the region has, counted as an ``update`` for faults) record them; ``drop_store``
removes one by hand.
"""

from __future__ import annotations

import copy
import os
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from glancesync.backends import csvfile
from glancesync.backends.base import UPLOAD_MARKER
from glancesync.backends.mock_faults import DEFAULT_CAUSE, Faults
from glancesync.errors import BackendError, ConfigError, ErrorKind, RegionNotFound
from glancesync.image import FOLLOWED, RENAMED_AT, SOURCE_HASH, SOURCE_ID, Image, is_reserved

DEFAULT_STORE = "default"


class MockStore:
    """Every region's images, shared by all targets; optionally backed by a folder."""

    def __init__(
        self, regions: dict[str, list[Image]] | None = None, folder: str | None = None
    ) -> None:
        self._lock = threading.RLock()
        self._regions: dict[str, list[Image]] = {}
        self._faults = Faults()
        self._stores: dict[str, tuple[str, ...]] = {}  # region -> its stores, when given
        self.folder = folder
        # what the region locks of this store are named by: the folder is the state when
        # there is one (two processes on it sync the same images); else this object is
        self.lock_scope = os.path.realpath(folder) if folder else f"memory-{uuid.uuid4().hex}"
        for region, images in (regions or {}).items():
            self._regions[region] = [image.copy(region=region) for image in images]

    # ------------------------------------------------------------ construction

    @classmethod
    def load(cls, folder: str) -> MockStore:
        """An in-memory store replaying a folder of backups (GLANCESYNC_USE_MOCK=<folder>)."""
        store = cls(csvfile.read_folder(folder))
        store.load_faults(folder)
        return store

    @classmethod
    def persistent(cls, folder: str) -> MockStore:
        """A store whose state is the folder itself (GLANCESYNC_MOCKPERSISTENT_PATH)."""
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the mock folder: {exc.strerror}", source=folder
            ) from None
        store = cls(csvfile.read_folder(folder), folder=folder)
        store.load_faults(folder)
        return store

    # ------------------------------------------------------------ plain access

    def region_names(self) -> list[str]:
        with self._lock:
            return sorted(self._regions)

    def has_region(self, region: str) -> bool:
        with self._lock:
            return region in self._regions

    def add_region(self, region: str, images: list[Image] | tuple[Image, ...] = ()) -> None:
        """Create (or replace) a region; persisted like any other change."""
        with self._lock:
            self._regions[region] = [image.copy(region=region) for image in images]
            self._save(region)

    def images(self, region: str) -> list[Image]:
        """Copies of a region's images in stored order; KeyError when unknown."""
        with self._lock:
            return [image.copy() for image in self._regions[region]]

    def snapshot(self) -> dict[str, list[Image]]:
        """A copy of the whole store, sorted by region, for comparisons in tests."""
        with self._lock:
            return {region: self.images(region) for region in sorted(self._regions)}

    def save_to(self, folder: str) -> None:
        """Write every region as ``backup_<F>.csv`` into ``folder`` (e.g. to make a .result)."""
        os.makedirs(folder, exist_ok=True)
        with self._lock:
            for region, images in self._regions.items():
                path = os.path.join(folder, csvfile.backup_file_name(region))
                csvfile.write_backup(path, region, images)

    def _save(self, region: str) -> None:
        if self.folder is not None:
            path = os.path.join(self.folder, csvfile.backup_file_name(region))
            csvfile.write_backup(path, region, self._regions[region])

    # ------------------------------------------------------------ fault injection
    # (glancesync.backends.mock_faults)

    def fail_on(
        self, region: str, operation: str, after: int = 0, cause: str = DEFAULT_CAUSE
    ) -> None:
        """Make call ``after + 1`` (and later ones) of ``operation`` on ``region`` fail."""
        with self._lock:
            self._faults.add(region, operation, after, cause)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def load_faults(self, folder: str) -> None:
        """Read ``<folder>/mock_faults`` when present (format in mock_faults)."""
        with self._lock:
            self._faults.load(folder)

    # ------------------------------------------------------------ operations

    def list_images(self, region: str) -> list[Image]:
        with self._lock:
            if self._faults.check(region, "timeout") is not None:
                raise BackendError(
                    f"{region}: Timeout while retrieving image list.", ErrorKind.TIMEOUT
                )
            cause = self._faults.check(region, "list")
            if cause is None and region not in self._regions:
                raise RegionNotFound(
                    f"{region}: Error retrieving image list. Cause: region not found"
                )
            if cause is not None:
                raise BackendError(f"{region}: Error retrieving image list. Cause: {cause}")
            return self.images(region)

    def check_source(self, region: str, image: Image) -> None:
        with self._lock:
            cause = self._faults.check(region, "open")
            if cause is None and not self._find(region, image.id):
                cause = "image not found"
            if cause is not None:
                raise BackendError(
                    f"{region}: Cannot open the image {image.name} to upload. Cause: {cause}"
                )

    def upload(
        self,
        region: str,
        master: Image,
        owner: str,
        is_public: bool,
        properties: dict[str, Any],
        store: str = "",
    ) -> Image:
        with self._lock:
            cause = self._faults.check(region, "upload")
            if cause is None and region not in self._regions:
                cause = "region not found"
            if cause is not None:
                raise BackendError(f"{region}: Upload of {master.name} Failed. Cause: {cause}")
            image = Image(
                name=master.name,
                id=self._new_id(region, master.name),
                region=region,
                owner=owner,
                is_public=is_public,
                checksum=master.checksum,
                size=master.size,
                status="active",
                # reference 1.4: the mock has no data to hash; the master's checksum stands for it.
                user_properties={
                    **copy.deepcopy(dict(properties)),
                    SOURCE_ID: master.id,
                    SOURCE_HASH: master.checksum,
                },
                os_hash_algo=master.os_hash_algo,
                os_hash_value=master.os_hash_value,
                disk_format=master.disk_format,
                container_format=master.container_format,
                min_ram=master.min_ram,
                min_disk=master.min_disk,
                protected=master.protected,
                os_hidden=master.os_hidden,
                stores=(store,) if store else (),
            )
            self._regions[region].append(image)
            self._save(region)
            return image.copy()

    def update(
        self,
        region: str,
        image_id: str,
        name: str,
        is_public: bool,
        properties: dict[str, Any],
        attributes: Mapping[str, Any] | None = None,
    ) -> Image:
        with self._lock:
            stored, cause = self._locate(region, image_id, "update")
            if stored is None:
                raise BackendError(f"{region}: Update of {name} failed. Cause: {cause}")
            stored.name = name
            stored.is_public = is_public
            reserved = {k: v for k, v in stored.user_properties.items() if is_reserved(k)}
            new = {k: v for k, v in properties.items() if not is_reserved(k)}
            stored.user_properties = {**copy.deepcopy(new), **reserved}
            for key, value in (attributes or {}).items():
                if key in FOLLOWED:
                    setattr(stored, key, value)
            self._save(region)
            return stored.copy()

    def unmark(self, region: str, image_id: str) -> None:
        """The reserved upload marker removed (a verified copy of a dead run)."""
        with self._lock:
            stored, cause = self._locate(region, image_id, "update")
            if stored is None:
                raise BackendError(f"{region}: Removing the upload marker failed. Cause: {cause}")
            stored.user_properties.pop(UPLOAD_MARKER, None)
            if stored.checksum:
                stored.user_properties[SOURCE_HASH] = stored.checksum
            self._save(region)

    def delete(self, region: str, image_id: str) -> None:
        with self._lock:
            stored, cause = self._locate(region, image_id, "delete")
            if stored is not None and stored.protected:  # as Glance: 403 on a protected image
                stored, cause = None, f"Image {image_id} is protected and cannot be deleted."
            if stored is None:
                raise BackendError(f"{region}: Deletion of image {image_id} Failed. Cause: {cause}")
            self._regions[region].remove(stored)
            self._save(region)

    def set_visibility(self, region: str, image_id: str, visibility: str) -> Image:
        return self._change(region, image_id, "update", lambda i: _set_shared(i, visibility))

    def mark_renamed(self, region: str, image_id: str, renamed_at: str) -> Image:
        def mark(image: Image) -> None:
            image.user_properties[RENAMED_AT] = renamed_at

        return self._change(region, image_id, "update", mark)

    def members(self, region: str, image_id: str) -> dict[str, str]:
        with self._lock:
            stored = self._find(region, image_id)
            return dict(stored.members or {}) if stored is not None else {}

    def set_member(self, region: str, image_id: str, project: str, status: str | None) -> None:
        """Add or change (``status``) or remove (None) one member."""

        def change(image: Image) -> None:
            members = dict(image.members or {})
            if status is None:
                members.pop(project, None)
            else:
                members[project] = status
            image.members = members

        self._change(region, image_id, "update", change)

    # ------------------------------------------------------------ stores

    def store_names(self, region: str) -> list[str]:
        """The region's stores, its default first."""
        with self._lock:
            return list(self._stores.get(region, (DEFAULT_STORE,)))

    def set_stores(self, region: str, names: list[str] | tuple[str, ...]) -> None:
        with self._lock:
            self._stores[region] = tuple(names)

    def in_stores(self, region: str, image: Image) -> Image:
        """``image`` as listed: in the default store of a region given stores unless it
        says more; as it is elsewhere."""
        if image.stores or region not in self._stores:
            return image
        return image.copy(stores=tuple(self.store_names(region)[:1]))

    def copy_to_stores(self, region: str, image_id: str, names: tuple[str, ...]) -> Image:
        unknown = [n for n in names if n not in self.store_names(region)]
        if unknown:
            raise BackendError(
                f"{region}: Copy of {image_id} into stores Failed. "
                f"Cause: unknown store(s) {', '.join(unknown)}"
            )

        def add(image: Image) -> None:
            there = self.in_stores(region, image).stores
            image.stores = there + tuple(n for n in names if n not in there)

        return self.in_stores(region, self._change(region, image_id, "update", add))

    def drop_store(self, region: str, image_id: str, name: str) -> None:
        """The image's data deleted from one store by hand (a test's operator)."""

        def drop(image: Image) -> None:
            image.stores = tuple(n for n in self.in_stores(region, image).stores if n != name)

        self._change(region, image_id, "none", drop)

    def _change(self, region: str, image_id: str, operation: str, change: Any) -> Image:
        with self._lock:
            stored, cause = self._locate(region, image_id, operation)
            if stored is None:
                raise BackendError(f"{region}: Update of {image_id} failed. Cause: {cause}")
            change(stored)
            self._save(region)
            return stored.copy()

    def _locate(self, region: str, image_id: str, operation: str) -> tuple[Image | None, str]:
        """The stored image a write applies to, or None and the cause the write fails with."""
        cause = self._faults.check(region, operation)
        if cause is not None:
            return None, cause
        stored = self._find(region, image_id)
        return stored, "" if stored is not None else "image not found"

    def _find(self, region: str, image_id: str) -> Image | None:
        for image in self._regions.get(region, ()):
            if image.id == image_id:
                return image
        return None

    def _new_id(self, region: str, name: str) -> str:
        """Deterministic ids (``1$image01``) keep scenario results stable; no counter is kept."""
        taken = {image.id for image in self._regions[region]}
        seq = 1
        while f"{seq}${name}" in taken:
            seq += 1
        return f"{seq}${name}"


def _set_shared(image: Image, visibility: str) -> None:
    image.is_public = visibility == "public"
    image.shared = visibility == "shared"
