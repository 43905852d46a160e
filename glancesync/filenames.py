"""Region names as parts of file names (logs, backups, locks).

Region names come from a target's Keystone catalog, i.e. from outside: a name such as
``../../x`` or one with a NUL must not choose where a file lands. ``file_part`` is the
one place that decides; ordinary names (``other:Madrid``, accented letters) are kept as
they are, so existing backups and logs keep their names.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")
MAX_BYTES = 150  # leaves room for prefixes and suffixes within 255 bytes


def file_part(name: str) -> str:
    """``name`` safe as part of one file name in a folder: no separator, control
    character nor leading dot; a long name is cut and keeps a digest of the whole."""
    safe = _UNSAFE.sub("_", name)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if len(safe.encode()) > MAX_BYTES:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        head = safe.encode()[: MAX_BYTES - 13].decode(errors="ignore")
        safe = f"{head}-{digest}"
    return safe or "_"
