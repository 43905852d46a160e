"""Which path a region's copies take: through this host (proxy) or server-side.

The target option ``transfer`` (README "Server-side copies", docs/configuration.md):
``proxy`` reads every master image here and writes it to the region; ``glance-download``
asks the region's Glance to import the image from the master region itself, so no byte
crosses this host; ``auto`` takes the server-side path where it can and the proxy path
elsewhere. Glance's glance-download imports with the caller's token, so only regions of
the master's own target (same Keystone) can use it.

Pure logic: the configuration checks and the per-region choice take plain values; the
executor (glancesync.executor) and the backends do the copying.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from glancesync.backends.base import ProgressCallback
from glancesync.image import Image

PROXY = "proxy"
GLANCE_DOWNLOAD = "glance-download"
AUTO = "auto"
CHOICES = (PROXY, GLANCE_DOWNLOAD, AUTO)
MASTER_TARGET = "master"

# The Glance import method a region must advertise (GET /v2/info/import) for ``auto``.
IMPORT_METHOD = GLANCE_DOWNLOAD

# ``importer(master, is_public, properties, progress)``: the new region image, or a
# BackendError; bound to one region, the master region and the import timeout.
Importer = Callable[[Image, bool, dict[str, Any], ProgressCallback | None], Image]


def misconfigured(target_name: str, transfer: str) -> str | None:
    """Why ``transfer`` cannot be set for this target, or None.

    glance-download is asked of the region with the sync's token, and the region's Glance
    fetches the master image with that same token: a target of another Keystone has no
    token the master region would accept.
    """
    if transfer == GLANCE_DOWNLOAD and target_name != MASTER_TARGET:
        return (
            "glance-download copies only to regions of the master's Keystone "
            "(the [master] section); use auto or proxy for this target"
        )
    return None


def needs_probe(target_name: str, transfer: str) -> bool:
    """Whether the choice depends on what the region's Glance advertises."""
    return transfer == AUTO and target_name == MASTER_TARGET


def region_path(target_name: str, transfer: str, advertised: bool | None) -> str:
    """The path of a region's copies: ``proxy`` or ``glance-download``.

    ``advertised``: whether the region's Glance lists glance-download among its import
    methods (None when not asked). ``glance-download`` is taken as configured (an import
    the region refuses fails that image); ``auto`` takes it only where advertised.
    """
    if target_name != MASTER_TARGET or transfer == PROXY:
        return PROXY
    if transfer == GLANCE_DOWNLOAD:
        return GLANCE_DOWNLOAD
    return GLANCE_DOWNLOAD if advertised else PROXY


def image_path(region: str, converts: bool) -> str:
    """The path of one copy, given its region's: an image this host converts (target
    option ``convert_to``) crosses it whatever the region's path."""
    return PROXY if converts else region


def falls_back(transfer: str) -> bool:
    """Whether an image whose import fails is copied again through this host (``auto``
    only: with ``glance-download`` the operator asked for no byte through this host)."""
    return transfer == AUTO


@dataclass(frozen=True)
class RegionTransfer:
    """How the executor copies a region's images: the path, whether a failed import
    falls back to the proxy path once, and the importer of the server-side path.

    ``shown``: whether results and log lines name the path; not with the default
    ``transfer = proxy``, whose results stay as they were before the option existed.
    """

    path: str = PROXY
    fallback: bool = False
    importer: Importer | None = None
    shown: bool = False

    @property
    def server_side(self) -> bool:
        return self.path == GLANCE_DOWNLOAD and self.importer is not None


PROXIED = RegionTransfer()
