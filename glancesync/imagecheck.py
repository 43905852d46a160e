"""Safety checks on a master image's data before qemu-img converts it.

Why: a disk image may point outside itself. A qcow2 may name a backing file or an
external data file (any path of the sync host, read into the converted copy); a vmdk
other than the single-file monolithicSparse/streamOptimized is a text descriptor whose
extents are files of the host. Such images are refused, as Glance's own format
inspector refuses them. The header is read here, before qemu-img ever opens the file;
``qemu-img info``'s answer is then checked again (the same rules, its own parser).

Pure: bytes or the parsed ``qemu-img info --output=json`` in, a refusal reason or None out.
"""

from __future__ import annotations

import re
import struct
from typing import Any

HEADER_BYTES = 4096  # enough for a qcow2 header and a vmdk sparse header
SAFE_VMDK = ("monolithicSparse", "streamOptimized")
_QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_DATA_FILE_BIT = 1 << 2  # incompatible feature: external data file
_VMDK_MAGIC = b"KDMV"
_CREATE_TYPE = re.compile(rb'createType\s*=\s*"([^"]*)"')


def header_refusal(fmt: str, head: bytes, descriptor: bytes = b"") -> str | None:
    """Why the image whose first bytes are ``head`` is refused, or None.

    ``fmt`` is the master's Glance disk_format; for vmdk, ``descriptor`` is the embedded
    descriptor (see ``vmdk_descriptor_span``).
    """
    if fmt == "qcow2":
        return _qcow2_refusal(head)
    if fmt == "vmdk":
        if not head.startswith(_VMDK_MAGIC):
            return "vmdk image is not a single-file sparse vmdk (a descriptor names other files)"
        return _vmdk_type_refusal(_create_type(descriptor))
    return None


def _qcow2_refusal(head: bytes) -> str | None:
    if len(head) < 72 or not head.startswith(_QCOW2_MAGIC):
        return "qcow2 image has no qcow2 header"
    version, backing_offset, backing_size = struct.unpack(">IQI", head[4:20])
    if backing_offset or backing_size:
        return "qcow2 image names a backing file"
    if version >= 3 and len(head) >= 80:
        (incompatible,) = struct.unpack(">Q", head[72:80])
        if incompatible & _QCOW2_DATA_FILE_BIT:
            return "qcow2 image names an external data file"
    return None


def vmdk_descriptor_span(head: bytes) -> tuple[int, int] | None:
    """(offset, length) in bytes of the descriptor embedded in a sparse vmdk, or None."""
    if len(head) < 44 or not head.startswith(_VMDK_MAGIC):
        return None
    offset, size = struct.unpack("<QQ", head[28:44])
    return offset * 512, min(size * 512, 1 << 20)


def _create_type(descriptor: bytes) -> str:
    match = _CREATE_TYPE.search(descriptor)
    return match.group(1).decode("ascii", "replace") if match else ""


def _vmdk_type_refusal(create_type: str) -> str | None:
    if create_type in SAFE_VMDK:
        return None
    shown = create_type or "unknown"
    return f"vmdk image of type {shown} (only {' and '.join(SAFE_VMDK)} are converted)"


def info_refusal(fmt: str, info: dict[str, Any]) -> str | None:
    """The same rules on ``qemu-img info --output=json -f <qemu format>``'s answer."""
    if info.get("backing-filename") or info.get("full-backing-filename"):
        return f"{fmt} image names a backing file"
    specific = info.get("format-specific") or {}
    data = specific.get("data") or {}
    if specific.get("type") == "qcow2" and data.get("data-file"):
        return "qcow2 image names an external data file"
    if specific.get("type") == "vmdk":
        return _vmdk_type_refusal(str(data.get("create-type") or ""))
    if not isinstance(info.get("virtual-size"), int):
        return f"qemu-img gives no virtual size for this {fmt} image"
    return None


def space_refusal(virtual_size: int, free: int, directory: str) -> str | None:
    """The converted file may take the whole virtual size: it must fit in the spool."""
    if virtual_size > free:
        return (
            f"virtual size {virtual_size} bytes exceeds the free space of {directory} "
            f"({free} bytes)"
        )
    return None
