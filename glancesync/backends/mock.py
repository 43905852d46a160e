"""The offline mock backend (reference 8): a product feature for scenarios and demos.

One ``MockStore`` holds every region of every target, keyed by region full name
(``Burgos``, ``other:Madrid``); a ``MockBackend`` per target views it through that
target's credential. The store is guarded by one lock because parallel syncs run
regions in threads of one process.

Stores:

* ``MockStore()`` / ``MockStore({"Burgos": [images...]})`` - in memory.
* ``MockStore.load(folder)`` - in memory, loaded from the folder's ``backup_<F>.csv``
  files (and its ``mock_faults`` file, below); nothing is saved.
* ``MockStore.persistent(folder)`` - the folder *is* the store (reference 8): loaded at start,
  the changed region's file rewritten atomically after every change.

Images keep ``protected``, ``min_ram``, ``min_disk`` and ``os_hidden`` in memory only
(Glance's defaults when loaded: the CSV format stays reference 8.2); a protected
image cannot be deleted, as in Glance. Uploads record ``glancesync_source_id`` (the
master id) and ``glancesync_source_hash`` (the master's checksum: the mock keeps no data
to hash), reference 1.4.

Members and retention: an image's ``shared`` visibility and members live in memory as
the image's fields and in the backup's properties column as reserved properties
(``glancesync_visibility``, ``glancesync_members``: csvfile). The mock's Keystone knows
every project whose id is ``<name>id`` in the master target and ``<target>_<name>id`` in
another target (domain ``Default``), so ``members = by-name`` maps ``p1id`` to
``other_p1id``; any other id is a project no Keystone has. ``accept_members`` works: the
mock's credentials are admin, unless the user's name starts with ``member``.

Fault injection (for scenarios of "a region that fails mid-way"):

* ``store.fail_on(region_full, operation, after=N, cause="injected fault")``: the first
  ``N`` calls of ``operation`` on that region succeed; call ``N + 1`` and every later
  one raise the ``BackendError`` the real backend would raise there (reference 6.6),
  with ``cause`` as the reason. ``after=0`` fails at once. A failed call changes nothing.
* operations: ``list`` (list_images), ``timeout`` (list_images, timeout message),
  ``open`` (image_source), ``upload``, ``update``, ``delete``, and ``write`` (any of
  upload/update/delete, counted together).
* The same from a folder: a file ``mock_faults`` next to the backups, one
  ``<region full name>,<operation>,<N>`` per line; empty lines and lines starting with
  ``#`` are ignored. It is read by ``MockStore.load`` and ``MockStore.persistent`` (so
  ``GLANCESYNC_USE_MOCK=S`` activates ``S/mock_faults``); counters live in memory and
  restart with each process.
"""

from __future__ import annotations

import copy
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from glancesync.backends import csvfile
from glancesync.backends.base import (
    UPLOAD_MARKER,
    ImageSource,
    ProgressCallback,
    full_region_name,
)
from glancesync.errors import BackendError, ConfigError, ErrorKind, RegionNotFound
from glancesync.image import FOLLOWED, RENAMED_AT, SOURCE_HASH, SOURCE_ID, Image, is_reserved

if TYPE_CHECKING:
    from glancesync.config import Target

FAULTS_FILE = "mock_faults"
DEFAULT_CAUSE = "injected fault"
WRITE_OPERATIONS = ("upload", "update", "delete")
OPERATIONS = ("list", "timeout", "open", *WRITE_OPERATIONS, "write")


@dataclass
class _Fault:
    after: int
    cause: str
    calls: int = 0


@dataclass
class MockImageSource:
    """The mock keeps no image data: an upload only needs the size."""

    size: int
    synthetic = True  # no bytes to convert: glancesync.convert simulates the conversion

    def chunks(self) -> Iterator[bytes]:
        yield from ()


class MockStore:
    """Every region's images, shared by all targets; optionally backed by a folder."""

    def __init__(
        self, regions: dict[str, list[Image]] | None = None, folder: str | None = None
    ) -> None:
        self._lock = threading.RLock()
        self._regions: dict[str, list[Image]] = {}
        self._faults: dict[tuple[str, str], _Fault] = {}
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

    def fail_on(
        self, region: str, operation: str, after: int = 0, cause: str = DEFAULT_CAUSE
    ) -> None:
        """Make call ``after + 1`` (and later ones) of ``operation`` on ``region`` fail."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown mock operation {operation!r}; use one of {OPERATIONS}")
        if after < 0:
            raise ValueError("after must be >= 0")
        with self._lock:
            self._faults[(region, operation)] = _Fault(after, cause)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def load_faults(self, folder: str) -> None:
        """Read ``<folder>/mock_faults`` when present (format in the module docstring)."""
        path = os.path.join(folder, FAULTS_FILE)
        if not os.path.isfile(path):
            return
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the file: {exc}", source=path) from None
        for lineno, line in enumerate(lines, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                self._fault_line(line, lineno, path)

    def _fault_line(self, line: str, lineno: int, path: str) -> None:
        parts = [part.strip() for part in line.rsplit(",", 2)]
        if len(parts) != 3 or not parts[0]:
            raise ConfigError(f"line {lineno}: expected <region>,<operation>,<n>", source=path)
        region, operation, count = parts
        if operation not in OPERATIONS:
            known = ", ".join(OPERATIONS)
            problem = f"line {lineno}: operation must be one of {known}, not {operation!r}"
            raise ConfigError(problem, source=path)
        if not count.isascii() or not count.isdigit():
            raise ConfigError(
                f"line {lineno}: <n> must be a whole number, not {count!r}", source=path
            )
        self.fail_on(region, operation, int(count))

    def _check_fault(self, region: str, operation: str) -> str | None:
        """The cause to raise with, or None; counts the call. Caller holds the lock."""
        keys = [(region, operation)]
        if operation in WRITE_OPERATIONS:
            keys.append((region, "write"))
        cause = None
        for key in keys:
            fault = self._faults.get(key)
            if fault is not None:
                fault.calls += 1
                if fault.calls > fault.after and cause is None:
                    cause = fault.cause
        return cause

    # ------------------------------------------------------------ operations

    def list_images(self, region: str) -> list[Image]:
        with self._lock:
            if self._check_fault(region, "timeout") is not None:
                raise BackendError(
                    f"{region}: Timeout while retrieving image list.", ErrorKind.TIMEOUT
                )
            cause = self._check_fault(region, "list")
            if cause is None and region not in self._regions:
                raise RegionNotFound(
                    f"{region}: Error retrieving image list. Cause: region not found"
                )
            if cause is not None:
                raise BackendError(f"{region}: Error retrieving image list. Cause: {cause}")
            return self.images(region)

    def check_source(self, region: str, image: Image) -> None:
        with self._lock:
            cause = self._check_fault(region, "open")
            if cause is None and not self._find(region, image.id):
                cause = "image not found"
            if cause is not None:
                raise BackendError(
                    f"{region}: Cannot open the image {image.name} to upload. Cause: {cause}"
                )

    def upload(
        self, region: str, master: Image, owner: str, is_public: bool, properties: dict[str, Any]
    ) -> Image:
        with self._lock:
            cause = self._check_fault(region, "upload")
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
        cause = self._check_fault(region, operation)
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


class MockBackend:
    """The Backend protocol over a MockStore, as seen by one target's credential."""

    def __init__(self, target: Target, store: MockStore) -> None:
        self.target = target
        self.target_name = target.name
        self.store = store

    def full_name(self, region: str) -> str:
        return full_region_name(self.target_name, region)

    def regions(self) -> list[str]:
        names = self.store.region_names()
        if self.target_name == "master":
            return sorted(name for name in names if ":" not in name)
        prefix = f"{self.target_name}:"
        return sorted(name[len(prefix) :] for name in names if name.startswith(prefix))

    def tenant_id(self) -> str:
        return self.target.tenant_id or f"{self.target.connection.tenant}id"

    def list_images(self, region: str) -> list[Image]:
        return self.store.list_images(self.full_name(region))

    def image_source(self, region: str, image: Image) -> ImageSource:
        self.store.check_source(self.full_name(region), image)
        return MockImageSource(image.size)

    def upload(
        self,
        region: str,
        master: Image,
        is_public: bool,
        properties: dict[str, Any],
        source: ImageSource | None,
        progress: ProgressCallback | None = None,
    ) -> Image:
        # the mock's upload is whole at once: like a verified real one, it keeps no marker
        kept = {key: value for key, value in properties.items() if key != UPLOAD_MARKER}
        image = self.store.upload(self.full_name(region), master, self.tenant_id(), is_public, kept)
        if progress is not None:
            progress(image.size)
        return image

    def update(
        self,
        region: str,
        image: Image,
        name: str,
        is_public: bool,
        properties: dict[str, Any],
        attributes: Mapping[str, Any] | None = None,
    ) -> Image:
        return self.store.update(
            self.full_name(region), image.id, name, is_public, properties, attributes
        )

    def delete(self, region: str, image_id: str) -> None:
        self.store.delete(self.full_name(region), image_id)

    def unmark(self, region: str, image: Image) -> None:
        self.store.unmark(self.full_name(region), image.id)

    def lock_key(self, region: str) -> str:
        """The store and the region: two stores with a same-named region do not contend."""
        return f"mock:{self.store.lock_scope}|{self.full_name(region)}"

    def images_named(self, region: str, name: str) -> list[Image]:
        """A plain read (no injected fault counts it: faults count the sync's own calls)."""
        try:
            return [i for i in self.store.images(self.full_name(region)) if i.name == name]
        except KeyError:
            return []

    def server_now(self, region: str) -> datetime | None:
        """The mock has no server: this host's clock is the region's."""
        return None

    # ------------------------------------------------------------ members, retention

    def set_visibility(self, region: str, image: Image, visibility: str) -> Image:
        return self.store.set_visibility(self.full_name(region), image.id, visibility)

    def mark_renamed(self, region: str, image: Image, renamed_at: str) -> Image:
        return self.store.mark_renamed(self.full_name(region), image.id, renamed_at)

    def image_members(self, region: str, image_id: str) -> dict[str, str]:
        return self.store.members(self.full_name(region), image_id)

    def add_member(self, region: str, image_id: str, project_id: str) -> None:
        self.store.set_member(self.full_name(region), image_id, project_id, "pending")

    def remove_member(self, region: str, image_id: str, project_id: str) -> None:
        self.store.set_member(self.full_name(region), image_id, project_id, None)

    def set_member_status(self, region: str, image_id: str, project_id: str, status: str) -> None:
        self.store.set_member(self.full_name(region), image_id, project_id, status)

    def may_set_member_status(self) -> bool:
        """The mock's credentials are admin unless the user's name says otherwise."""
        return not self.target.connection.user.startswith("member")

    def _project_prefix(self) -> str:
        return "" if self.target_name == "master" else f"{self.target_name}_"

    def project_names(self, project_ids: list[str]) -> dict[str, tuple[str, str] | None]:
        prefix, names = self._project_prefix(), {}
        for pid in project_ids:
            known = pid.startswith(prefix) and pid.endswith("id") and len(pid) > len(prefix) + 2
            names[pid] = (pid[len(prefix) : -2], "Default") if known else None
        return names

    def project_ids(self, names: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        prefix = self._project_prefix()
        return {n: f"{prefix}{n[0]}id" if n[1] == "Default" else None for n in names}

    def can_import(self, region: str) -> bool:
        """The mock has no Glance to import server-side (glancesync.transfer): ``auto``
        copies through this host, ``glance-download`` fails each copy."""
        return False

    def import_copy(
        self,
        region: str,
        master: Image,
        is_public: bool,
        properties: dict[str, Any],
        progress: ProgressCallback | None = None,
        *,
        source_region: str,
        timeout: float,
    ) -> Image:
        raise BackendError(f"{self.full_name(region)}: the mock cannot import server-side")
