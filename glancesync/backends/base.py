"""The backend interface: everything the core needs from a cloud, and nothing more.

A backend is bound to one target (one credential). Region arguments are bare region
names of that target; images it returns carry the region's full name (reference 1.3).
Every failure is raised as ``BackendError`` whose message is the log text of
reference 6.6, so callers never format backend errors themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

from glancesync.image import Image

# User property that marks an image while glancesync uploads it; removed once the data is
# verified. Its value is the id of the run uploading (``in_progress`` when no run id was
# given, and from versions before run ids); see glancesync.leftovers.
UPLOAD_MARKER = "glancesync_upload"
UPLOAD_MARKER_VALUE = "in_progress"

# Called with the number of bytes just sent, so the CLI and the service can show progress.
ProgressCallback = Callable[[int], None]


class ImageSource(Protocol):
    """Where the bytes of a master image come from (a local file or the master Glance API)."""

    size: int

    def chunks(self) -> Iterator[bytes]:
        """Yield the image data; each call starts a new read."""
        ...


class Backend(Protocol):
    target_name: str

    def full_name(self, region: str) -> str:
        """``region`` for the master target, ``<target>:<region>`` otherwise."""
        ...

    def regions(self) -> list[str]:
        """Bare names of the target's regions, sorted by name (reference 7.3)."""
        ...

    def tenant_id(self) -> str: ...

    def list_images(self, region: str) -> list[Image]:
        """Every image the credential can see in ``region``, in listing order, unfiltered."""
        ...

    def image_source(self, region: str, image: Image) -> ImageSource:
        """The data of ``image`` (an image of this target's ``region``) for an upload."""
        ...

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
        """Create an image named like ``master`` with its data, formats, ``FOLLOWED``
        attributes and the given visibility and user properties, recording
        ``glancesync_source_id``/``glancesync_source_hash`` (reference 1.4); return the new image
        as the region lists it. ``store``: the multi-store Glance's store the data goes
        to ("" its default)."""
        ...

    def update(
        self,
        region: str,
        image: Image,
        name: str,
        is_public: bool,
        properties: dict[str, Any],
        attributes: Mapping[str, Any] | None = None,
    ) -> Image:
        """Make ``image`` have exactly this name, visibility and user properties, and the
        given ``image.FOLLOWED`` attributes (None leaves them). The reserved
        ``glancesync_*`` properties are kept as they are (reference 1.4)."""
        ...

    def delete(self, region: str, image_id: str) -> None: ...

    def unmark(self, region: str, image: Image) -> None:
        """Remove the upload marker of ``image``, an active copy verified against its
        master after its run died (glancesync.leftovers), recording its checksum as the
        copied data's hash (``glancesync_source_hash``, reference 1.4) as a finished upload does."""
        ...

    # -- what keeps two runs apart (glancesync.regionlock, glancesync.leftovers) --------
    def lock_key(self, region: str) -> str:
        """Names the store behind ``region`` for the same-host region lock: runs whose
        keys are equal sync the same images, so they must not overlap."""
        ...

    def images_named(self, region: str, name: str) -> list[Image]:
        """The region's images called ``name``, listed now: asked right before an upload
        to see whether another run started uploading that image since the listing."""
        ...

    def server_now(self, region: str) -> datetime | None:
        """The region's own clock, so marked images are created and judged by one clock;
        None when unknown (this host's clock is used)."""
        ...

    # -- members of shared images and retention (glancesync.members, .retention) --------
    def set_visibility(self, region: str, image: Image, visibility: str) -> Image:
        """Give ``image`` this visibility (``shared`` or ``private``); ``update`` only
        ever sets public or private."""
        ...

    def mark_renamed(self, region: str, image: Image, renamed_at: str) -> Image:
        """Write the reserved ``glancesync_renamed_at`` (``update`` never writes reserved
        properties): the mark that makes a renamed image a ``keep_old`` candidate."""
        ...

    def image_members(self, region: str, image_id: str) -> dict[str, str]:
        """The image's members: project id -> member status."""
        ...

    def add_member(self, region: str, image_id: str, project_id: str) -> None:
        """Share the image with a project (Glance adds it ``pending``)."""
        ...

    def remove_member(self, region: str, image_id: str, project_id: str) -> None: ...

    def set_member_status(self, region: str, image_id: str, project_id: str, status: str) -> None:
        """Accept or reject for the member (Glance allows it to admin credentials)."""
        ...

    def may_set_member_status(self) -> bool:
        """Whether these credentials may set another project's member status (Glance
        allows it to admin only): ``accept_members`` asks before it tries."""
        ...

    def project_names(self, project_ids: list[str]) -> dict[str, tuple[str, str] | None]:
        """(project name, domain name) of each project id in this target's Keystone;
        None for a project it does not know."""
        ...

    def project_ids(self, names: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """The id of each (project name, domain name) in this target's Keystone; None
        for a project missing there."""
        ...

    def can_import(self, region: str) -> bool:
        """Whether the region's Glance can copy an image of the master region itself
        (``glance-download``; glancesync.transfer's ``auto`` asks)."""
        ...

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
        """The region's Glance copies ``master`` (an image of ``source_region``) itself;
        the copy is verified like an upload before it is returned. BackendError when the
        import fails, times out or is cancelled (the importing image deleted)."""
        ...

    # -- multi-store regions (glancesync.stores) ----------------------------------------
    def stores(self, region: str) -> list[str]:
        """The stores of the region's Glance, its default first; empty when it is not
        multi-store. BackendError when the region does not answer."""
        ...

    def copy_to_stores(
        self, region: str, image: Image, stores: tuple[str, ...], *, timeout: float
    ) -> Image:
        """The region's Glance copies the data of ``image`` (active) into ``stores``
        itself (``copy-image``: no byte through this host); returns the image once it is
        in all of them. BackendError when a copy fails or takes more than ``timeout``."""
        ...


def full_region_name(target_name: str, region: str) -> str:
    return region if target_name == "master" else f"{target_name}:{region}"
