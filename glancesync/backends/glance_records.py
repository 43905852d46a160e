"""Glance v2 image records and the core's ``Image``: reading one, and what to write.

Pure functions of plain data: the record -> ``Image`` mapping, the fields of a new image,
the JSON patch of a metadata update, and the read-back check of an upload.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from glancesync.backends.base import UPLOAD_MARKER, UPLOAD_MARKER_VALUE
from glancesync.image import FOLLOWED, SOURCE_ID, Image, is_reserved, is_user_property

JSON_PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


def to_image(record: Mapping[str, Any], region: str) -> Image:
    """A Glance v2 image record as the core sees it (reference 1.4)."""
    data = dict(record)
    return Image(
        name=data.get("name") or "",
        id=data["id"],
        region=region,
        owner=data.get("owner") or "",
        is_public=data.get("visibility") == "public",
        checksum=data.get("checksum") or "",
        size=int(data.get("size") or 0),
        status=data.get("status") or "",
        user_properties={k: v for k, v in data.items() if is_user_property(k)},
        os_hash_algo=data.get("os_hash_algo") or "",
        os_hash_value=data.get("os_hash_value") or "",
        disk_format=data.get("disk_format") or "",
        container_format=data.get("container_format") or "",
        min_ram=int(data.get("min_ram") or 0),
        min_disk=int(data.get("min_disk") or 0),
        protected=bool(data.get("protected")),
        created_at=data.get("created_at") or "",
        os_hidden=bool(data.get("os_hidden")),
        shared=data.get("visibility") == "shared",
        stores=record_stores(data),
    )


def record_stores(record: Mapping[str, Any]) -> tuple[str, ...]:
    """The stores of a multi-store Glance's record: ``stores`` is one comma-separated string."""
    text = record.get("stores") or ""
    return tuple(name.strip() for name in str(text).split(",") if name.strip())


def _string_properties(properties: Mapping[str, Any]) -> dict[str, str]:
    """Glance v2 stores user properties as strings."""
    return {key: v if isinstance(v, str) else str(v) for key, v in properties.items()}


def create_fields(master: Image, is_public: bool, properties: Mapping[str, Any]) -> dict[str, Any]:
    """What ``images.create`` gets: never ``protected`` (a failed upload must be deletable)."""
    fields: dict[str, Any] = _string_properties(
        {k: v for k, v in properties.items() if is_user_property(k)}
    )
    fields.update(
        name=master.name,
        visibility="public" if is_public else "private",
        min_ram=master.min_ram,
        min_disk=master.min_disk,
    )
    if master.os_hidden:
        fields["os_hidden"] = True
    fields[SOURCE_ID] = master.id  # reference 1.4; the hash is added once the data is verified
    if master.disk_format:
        fields["disk_format"] = master.disk_format
    if master.container_format:
        fields["container_format"] = master.container_format
    fields.setdefault(UPLOAD_MARKER, UPLOAD_MARKER_VALUE)  # the executor puts its run id
    return fields


def metadata_patch(
    current: Mapping[str, Any], name: str, is_public: bool, properties: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The changes and removals that give ``current`` this name, visibility and properties.

    Only what differs is sent, so an update of an up-to-date image is a no-op. Visibility
    changes only when public-ness differs (a ``shared`` image that must stay non-public is
    left alone, 6.5). The reserved ``glancesync_*`` properties are never touched (reference 1.4).
    """
    changes: dict[str, Any] = {}
    if current.get("name") != name:
        changes["name"] = name
    if (current.get("visibility") == "public") != is_public:
        changes["visibility"] = "public" if is_public else "private"
    for key, value in _string_properties(properties).items():
        if _writable(key) and current.get(key) != value:
            changes[key] = value
    removed = [k for k in current if _writable(k) and k not in properties]
    return changes, removed


def _writable(key: str) -> bool:
    return is_user_property(key) and not is_reserved(key)


def json_patch(
    current: Mapping[str, Any],
    name: str,
    is_public: bool,
    properties: Mapping[str, Any],
    attributes: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """RFC 6902 operations for the changed fields only (``metadata_patch``, plus the
    ``FOLLOWED`` attributes that differ).

    Sent as they are rather than through glanceclient's ``images.update``, which first
    validates the whole current image against the schema: an image with a property an
    older tool wrote badly (a non-UUID ``kernel_id``) could then never be updated.
    """
    changes, removed = metadata_patch(current, name, is_public, properties)
    for key, value in (attributes or {}).items():
        if key in FOLLOWED and current.get(key) != value:
            changes[key] = value
    ops = [
        {"op": "replace" if key in current else "add", "path": _pointer(key), "value": value}
        for key, value in changes.items()
    ]
    return ops + [{"op": "remove", "path": _pointer(key)} for key in removed]


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def stored_mismatch(record: Mapping[str, Any], master: Image, computed_md5: str) -> str | None:
    """Why the region's stored image is not the master's content (reference 1.4), or None.

    Read back after the upload: Glance computed these from the bytes it stored. The md5
    must be the master's (or, for a master without one, the md5 of the bytes sent); the
    multihash must be the master's whenever both use the same algorithm.
    """
    expected = master.checksum or computed_md5
    got = record.get("checksum") or ""
    if got and got != expected:
        return f"checksum mismatch (expected {expected}, got {got})"
    algo, value = record.get("os_hash_algo") or "", record.get("os_hash_value") or ""
    if master.os_hash_value and algo == master.os_hash_algo and value != master.os_hash_value:
        return f"multihash mismatch (expected {master.os_hash_value}, got {value or 'none'})"
    return None
