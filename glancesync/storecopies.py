"""A region's backend as its sync sees it when the target names stores (glancesync.stores).

A decorator of the ``Backend``: uploads go into the first wanted store, and every copy
the sync makes or updates is then copied by the region's Glance into the wanted stores
it lacks (``copy_to_stores``). The executor runs its plan through this object unchanged,
so the store rule lives here and nowhere in the executor.
"""

from __future__ import annotations

import logging
from typing import Any

from glancesync.backends.base import Backend
from glancesync.image import Image
from glancesync.stores import missing_stores


class StoreCopies:
    """``backend`` for one region whose copies must be in ``wanted`` (first: uploads).

    ``lacking``: ids of the region's images the view found missing from stores; only
    their metadata updates copy them (a renamed ``.old`` copy is left where it is).
    """

    def __init__(
        self,
        backend: Backend,
        full: str,
        wanted: tuple[str, ...],
        lacking: frozenset[str],
        log: logging.Logger,
        timeout: float,
    ) -> None:
        self.backend, self.full, self.wanted = backend, full, wanted
        self.lacking, self.log, self.timeout = lacking, log, timeout

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def upload(self, region: str, master: Image, *args: Any, **kwargs: Any) -> Image:
        kwargs["store"] = self.wanted[0]
        return self.complete(region, self.backend.upload(region, master, *args, **kwargs))

    def import_copy(self, region: str, master: Image, *args: Any, **kwargs: Any) -> Image:
        """A server-side import lands in the region's default store; the rest is copied."""
        return self.complete(region, self.backend.import_copy(region, master, *args, **kwargs))

    def update(self, region: str, image: Image, *args: Any, **kwargs: Any) -> Image:
        updated = self.backend.update(region, image, *args, **kwargs)
        return self.complete(region, updated) if image.id in self.lacking else updated

    def complete(self, region: str, image: Image) -> Image:
        """``image`` copied by the region's Glance into the wanted stores it lacks."""
        missing = missing_stores(image, self.wanted)
        if not missing:
            return image
        self.log.info(f"{self.full}: copying image {image.name} into store(s) {', '.join(missing)}")
        return self.backend.copy_to_stores(region, image, missing, timeout=self.timeout)


def for_region(
    backend: Backend,
    full: str,
    wanted: tuple[str, ...],
    lacking: frozenset[str],
    log: logging.Logger,
    timeout: float,
) -> Backend:
    """``backend`` itself when the target names no stores, else its ``StoreCopies``."""
    if not wanted:
        return backend
    return StoreCopies(backend, full, wanted, lacking, log, timeout)  # type: ignore[return-value]
