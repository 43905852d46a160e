"""Converted copies: which master images a target converts, and how a region's copy of
one is judged (README "Converting images").

Pure: images and the target's ``convert_to`` in, decisions out. A converted copy's
checksum is the md5 of the converted bytes, never the master's, so the copy records what
it was made from: ``glancesync_source_checksum`` (the master's checksum) and
``glancesync_converted_md5`` (the md5 of the bytes uploaded, written when the copy is
created so that a copy can be verified later like any other). Equality and the
conflict rules of a converted copy read the first of these instead of its checksum.
"""

from __future__ import annotations

from typing import Any

from glancesync.image import Image

SOURCE_CHECKSUM = "glancesync_source_checksum"
CONVERTED_MD5 = "glancesync_converted_md5"

# Glance's disk_format -> qemu-img's format name. Never probed: the input format given
# to qemu-img is always this one (a raw image that looks like qcow2 stays raw).
QEMU_FORMAT = {
    "raw": "raw",
    "qcow2": "qcow2",
    "vmdk": "vmdk",
    "vhd": "vpc",
    "vhdx": "vhdx",
    "vdi": "vdi",
}
TARGET_FORMATS = ("raw", "qcow2")

# A signature signs the master's bytes; it would not verify on converted bytes.
SIGNATURE_PREFIX = "img_signature"


def conversion_of(master: Image, convert_to: str) -> str:
    """The format ``master`` is converted to for a target, or "" for a plain copy.

    Plain copies: no ``convert_to``, a format qemu-img is not asked to read (iso, ami…),
    a master already in the wanted format, or a master without a checksum (a converted
    copy must name the content it came from).
    """
    if not convert_to or not master.checksum:
        return ""
    if master.disk_format not in QEMU_FORMAT or master.disk_format == convert_to:
        return ""
    return convert_to


def is_converted_copy(region: Image) -> bool:
    return bool(region.user_properties.get(SOURCE_CHECKSUM))


def rule_checksum(region: Image) -> str:
    """The checksum the conflict rules (replace, rename, dontupdate) look up: the source
    checksum of a converted copy (an operator names the master content it came from),
    the image's own checksum otherwise."""
    return str(region.user_properties.get(SOURCE_CHECKSUM) or region.checksum)


def same_converted_content(master: Image, region: Image, convert_to: str) -> bool:
    """A converted copy is up to date when it came from the master's current content and
    is in the wanted format."""
    source = region.user_properties.get(SOURCE_CHECKSUM)
    return bool(master.checksum) and source == master.checksum and region.disk_format == convert_to


def without_signature(properties: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if not k.startswith(SIGNATURE_PREFIX)}


def master_view(master: Image) -> Image:
    """The master as a converted copy should look: its properties without the signature
    ones, so they are neither compared, copied at upload nor written by an update."""
    return master.copy(user_properties=without_signature(master.user_properties))


def format_difference(master: Image, region: Image | None, convert_to: str) -> str:
    """A clause naming the formats when a region image is not in the wanted format ("" when
    it is, or for plain copies): the log and the API say why the content differs."""
    if region is None or not convert_to:
        return ""
    if region.disk_format == convert_to:
        return ""
    have = region.disk_format or "unknown"
    return f"region image is {have}, the target wants {convert_to} (master {master.disk_format})"


def upload_image(master: Image, convert_to: str, md5: str, size: int, hash_value: str) -> Image:
    """What the backend uploads for a converted copy: the master's name and attributes with
    the converted file's format, size and hashes, so the upload is verified against the
    converted bytes (the region's checksum must be their md5)."""
    return master.copy(
        disk_format=convert_to,
        checksum=md5,
        size=size,
        os_hash_value=hash_value if master.os_hash_algo else "",
    )


def upload_properties(properties: dict[str, Any], master: Image, md5: str) -> dict[str, Any]:
    """The properties a converted copy is created with."""
    return {**without_signature(properties), SOURCE_CHECKSUM: master.checksum, CONVERTED_MD5: md5}
