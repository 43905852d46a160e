"""An Image describing given bytes, as a master image with md5 and sha512 would."""

from __future__ import annotations

import hashlib
from typing import Any

from glancesync.image import Image


def image_for(data: bytes, **changes: Any) -> Image:
    """A raw master image whose checksum, multihash and size are those of ``data``."""
    image = Image(
        name="cirros",
        id="m-1",
        checksum=hashlib.md5(data).hexdigest(),
        size=len(data),
        os_hash_algo="sha512",
        os_hash_value=hashlib.sha512(data).hexdigest(),
        disk_format="raw",
        container_format="bare",
    )
    return image.copy(**changes)
