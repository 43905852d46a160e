"""The offline mock backend (reference 8): a product feature for scenarios and demos.

A ``MockBackend`` per target views the one ``MockStore`` (glancesync.backends.mock_store:
every region's images, in memory or in a folder of CSV backups) through that target's
credential; faults are injected into the store (glancesync.backends.mock_faults). The
names of those modules are importable from here too, as they always were.

The mock's Keystone knows every project whose id is ``<name>id`` in the master target and
``<target>_<name>id`` in another target (domain ``Default``), so ``members = by-name``
maps ``p1id`` to ``other_p1id``; any other id is a project no Keystone has.
``accept_members`` works: the mock's credentials are admin, unless the user's name starts
with ``member``. Stores (multi-store regions): one store ``default`` per region unless a
test gives it others (mock_store).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from glancesync.backends.base import (
    UPLOAD_MARKER,
    ImageSource,
    ProgressCallback,
    full_region_name,
)
from glancesync.backends.mock_faults import (
    DEFAULT_CAUSE,
    FAULTS_FILE,
    OPERATIONS,
    WRITE_OPERATIONS,
)
from glancesync.backends.mock_store import MockStore
from glancesync.errors import BackendError, RegionNotFound
from glancesync.image import Image

if TYPE_CHECKING:
    from glancesync.config import Target

__all__ = [
    "DEFAULT_CAUSE",
    "FAULTS_FILE",
    "OPERATIONS",
    "WRITE_OPERATIONS",
    "MockBackend",
    "MockImageSource",
    "MockStore",
]


@dataclass
class MockImageSource:
    """The mock keeps no image data: an upload only needs the size."""

    size: int
    synthetic = True  # no bytes to convert: glancesync.convert simulates the conversion

    def chunks(self) -> Iterator[bytes]:
        yield from ()


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
        full = self.full_name(region)
        return [self.store.in_stores(full, i) for i in self.store.list_images(full)]

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
        *,
        store: str = "",
    ) -> Image:
        # the mock's upload is whole at once: like a verified real one, it keeps no marker
        kept = {key: value for key, value in properties.items() if key != UPLOAD_MARKER}
        full = self.full_name(region)
        if store and store not in self.store.store_names(full):
            raise BackendError(f"{full}: Upload of {master.name} Failed. Cause: no store {store}")
        image = self.store.upload(full, master, self.tenant_id(), is_public, kept, store)
        if progress is not None:
            progress(image.size)
        return self.store.in_stores(full, image)

    def update(
        self,
        region: str,
        image: Image,
        name: str,
        is_public: bool,
        properties: dict[str, Any],
        attributes: Mapping[str, Any] | None = None,
    ) -> Image:
        full = self.full_name(region)
        updated = self.store.update(full, image.id, name, is_public, properties, attributes)
        return self.store.in_stores(full, updated)

    # ------------------------------------------------------------ stores (mock_store)

    def stores(self, region: str) -> list[str]:
        full = self.full_name(region)
        if not self.store.has_region(full):
            raise RegionNotFound(
                f"{full}: Cannot read the stores of the region. Cause: region not found"
            )
        return self.store.store_names(full)

    def copy_to_stores(
        self, region: str, image: Image, stores: tuple[str, ...], *, timeout: float
    ) -> Image:
        return self.store.copy_to_stores(self.full_name(region), image.id, stores)

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
