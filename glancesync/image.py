"""The image model shared by selection, status, planning and the backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Attributes of a Glance v2 image record that are not user properties (reference 1.4).
GLANCE_MANAGED = frozenset(
    [
        "id",
        "name",
        "status",
        "visibility",
        "protected",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "owner",
        "size",
        "virtual_size",
        "disk_format",
        "container_format",
        "min_ram",
        "min_disk",
        "created_at",
        "updated_at",
        "tags",
        "direct_url",
        "locations",
        "self",
        "file",
        "schema",
        "os_hidden",
        "stores",
    ]
)
AMI_PROPERTIES = ("kernel_id", "ramdisk_id")
# Glance-managed attributes that follow the master like metadata (reference 5.2).
FOLLOWED = ("protected", "min_ram", "min_disk", "os_hidden")

# glancesync's own properties (reference 1.4): written by uploads only, never compared, copied from
# the master, removed by a metadata update nor seen by metadata_condition.
RESERVED_PREFIX = "glancesync_"
SOURCE_ID = "glancesync_source_id"
SOURCE_HASH = "glancesync_source_hash"
# Written on every image glancesync renames (UTC ISO time): only such images are ever
# deleted by ``keep_old`` (glancesync.retention).
RENAMED_AT = "glancesync_renamed_at"


def is_user_property(key: str) -> bool:
    return key not in GLANCE_MANAGED and not key.startswith("os_glance_")


def is_reserved(key: str) -> bool:
    return key.startswith(RESERVED_PREFIX)


def without_reserved(properties: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if not k.startswith(RESERVED_PREFIX)}


@dataclass
class Image:
    """One image as seen in one region (master or not).

    Only the first nine fields are visible to metadata conditions and stored in the
    CSV backups; the others travel along so uploads keep the master's formats.
    """

    name: str
    id: str
    region: str = ""
    owner: str = ""
    is_public: bool = False
    checksum: str = ""
    size: int = 0
    status: str = "active"
    user_properties: dict[str, Any] = field(default_factory=dict)
    os_hash_algo: str = ""
    os_hash_value: str = ""
    disk_format: str = ""
    container_format: str = ""
    min_ram: int = 0
    min_disk: int = 0
    protected: bool = False
    created_at: str = ""  # Glance's ISO 8601 UTC time; ages leftovers (glancesync.leftovers)
    os_hidden: bool = False
    # Glance's ``shared`` visibility (``is_public`` is false then), and the image's members
    # (project id -> member status) when they were read: None means not asked
    # (glancesync.members).
    shared: bool = False
    members: dict[str, str] | None = None
    # The stores of a multi-store Glance holding the data (the record's ``stores``);
    # empty when the region does not say (glancesync.stores).
    stores: tuple[str, ...] = ()

    def copy(self, **changes: Any) -> Image:
        """A deep-enough copy: the properties dict is never shared between copies.

        Not ``dataclasses.replace``: this runs for every image of every listing, and a
        shallow copy plus attribute updates is several times faster.
        """
        new = object.__new__(Image)
        new.__dict__.update(self.__dict__)
        new.user_properties = dict(self.user_properties)
        if self.members is not None:
            new.members = dict(self.members)
        for key, value in changes.items():
            if not hasattr(new, key):
                raise TypeError(f"Image has no field {key!r}")
            setattr(new, key, value)
        return new

    @property
    def visibility(self) -> str:
        if self.is_public:
            return "public"
        return "shared" if self.shared else "private"


def followed_attributes(image: Image) -> dict[str, Any]:
    """The values of ``FOLLOWED`` (what ``Backend.update`` sets besides the properties)."""
    return {key: getattr(image, key) for key in FOLLOWED}


def same_content(master: Image, region: Image) -> bool:
    """Same content (reference 1.4); for a master without checksum or multihash, the region
    image is a copy of this master (``glancesync_source_id``) whose data is what was copied
    (its checksum is the ``glancesync_source_hash`` computed while copying)."""
    if master.checksum or master.os_hash_value:
        return same_hashes(master, region)
    props = region.user_properties
    return (
        bool(master.id)
        and props.get(SOURCE_ID) == master.id
        and SOURCE_HASH in props
        and props[SOURCE_HASH] == region.checksum
    )


def same_hashes(a: Image, b: Image) -> bool:
    """Equal non-empty checksums, and equal multihashes when both have the same algorithm
    (reference 1.4)."""
    if not a.checksum or not b.checksum or a.checksum != b.checksum:
        return False
    if a.os_hash_algo and a.os_hash_algo == b.os_hash_algo and a.os_hash_value and b.os_hash_value:
        return a.os_hash_value == b.os_hash_value
    return True


def pad_owner(owner: str) -> str:
    return (owner or "").rjust(32, "0")


def owned_by(image: Image, tenant_id: str) -> bool:
    """An empty owner counts as the tenant's (reference 1.2)."""
    return not image.owner or pad_owner(image.owner) == pad_owner(tenant_id)
