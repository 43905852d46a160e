"""A stand-in for glanceclient's ``client.images`` and a GlanceBackend wired to it.

Unit tests of the real backend's upload protocol (create, send, verify, unmark, clean up)
fake Glance at its API: records kept in a dict, and the checksum and multihash Glance
would compute from the bytes it stores.
"""

from __future__ import annotations

import hashlib
import threading
from types import SimpleNamespace
from typing import Any

from glanceclient import exc as gexc

from glancesync.backends.glance import GlanceBackend
from glancesync.backends.retry import RetryPolicy
from glancesync.config import Target
from glancesync.credentials import Connection


class FakeImages:
    """``client.images`` of glanceclient v2: create, get, update, delete, and ``store``
    for the data (subclasses decide how the bytes arrive)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.created: list[str] = []
        self.lock = threading.Lock()  # fan-out regions create concurrently

    def create(self, **fields: Any) -> dict[str, Any]:
        with self.lock:
            image_id = f"id-{len(self.created) + 1}"
            self.created.append(image_id)
        self.records[image_id] = {"id": image_id, "status": "queued", **fields}
        return dict(self.records[image_id])

    def store(self, image_id: str, data: bytes) -> None:
        """What Glance records once the bytes are in: status, size and their hashes."""
        self.records[image_id].update(
            status="active",
            size=len(data),
            checksum=hashlib.md5(data).hexdigest(),
            os_hash_algo="sha512",
            os_hash_value=hashlib.sha512(data).hexdigest(),
        )

    def get(self, image_id: str) -> dict[str, Any]:
        return dict(self.records[image_id])

    def update(self, image_id: str, remove_props: list[str] | None = None, **changes: Any):
        record = self.records[image_id]
        for key in remove_props or []:
            record.pop(key, None)
        record.update(changes)
        return dict(record)

    def delete(self, image_id: str) -> None:
        if image_id not in self.records:
            raise gexc.HTTPNotFound()
        del self.records[image_id]


def backend_with(client: Any, retry: RetryPolicy) -> GlanceBackend:
    """A GlanceBackend of the master target whose every region client is ``client``."""
    target = Target(
        name="master",
        connection=Connection("", password="secret-pw"),
        list_images_timeout=30,
        data_timeout=600,
    )
    config = SimpleNamespace(main=SimpleNamespace(images_dir="/nonexistent"))
    backend = GlanceBackend(target, config, retry=retry)  # type: ignore[arg-type]
    backend._client = lambda region, kind="data": client  # type: ignore[method-assign]
    return backend
