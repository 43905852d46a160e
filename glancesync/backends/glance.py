"""The real backend: Keystone v3 + Glance v2 through keystoneauth1 and python-glanceclient.

One ``GlanceBackend`` per target (one credential); its Keystone side (token, sessions,
catalog, clients) is ``glance_session.TargetSessions``. This module reads as the Backend
protocol: list, upload, update, delete, each failure reported as a ``BackendError`` with
the text of reference 6.6 and the kind of the failure (``glance_errors``); causes never
carry the password or the token.

Transfers (issue 7): an upload is retried on transient failures (``retry.RetryPolicy``,
tenacity), deleting the half image before each new attempt (``glance_upload``); a master
download that breaks is resumed with HTTP ``Range`` (``glance_data.ApiSource``); after the
data is sent, the region's image is read back and its checksum and multihash must be the
master's. A job longer than the token lifetime goes on: keystoneauth fetches a new token
(tests/integration/test_transfer_reliability.py proves it).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from glancesync.backends.base import (
    UPLOAD_MARKER,
    UPLOAD_MARKER_VALUE,
    ImageSource,
    ProgressCallback,
    full_region_name,
)
from glancesync.backends.glance_data import CHUNK_SIZE, ApiSource, FileSource, describe
from glancesync.backends.glance_errors import (
    is_timeout,
    kind_of,
    redact,
    short_reason,
    tls_reason,
)
from glancesync.backends.glance_http import check_content_range, ranged_body
from glancesync.backends.glance_import import ImportTransaction, advertises, import_request
from glancesync.backends.glance_members import GlanceMembers
from glancesync.backends.glance_records import (
    JSON_PATCH_TYPE,
    create_fields,
    json_patch,
    metadata_patch,
    stored_mismatch,
    to_image,
)
from glancesync.backends.glance_session import TargetSessions, unversioned
from glancesync.backends.glance_stores import CopyFailed, copy_into, list_stores
from glancesync.backends.glance_upload import UploadTransaction
from glancesync.backends.retry import RetryPolicy
from glancesync.credentials import keystone_v3_url
from glancesync.errors import BackendError, ErrorKind, RegionNotFound
from glancesync.image import SOURCE_HASH, Image

if TYPE_CHECKING:
    from glancesync.config import Config, Target

__all__ = [  # the names other modules and the tests import from here
    "PAGE_SIZE",
    "UPLOAD_MARKER",
    "UPLOAD_MARKER_VALUE",
    "GlanceBackend",
    "create_fields",
    "json_patch",
    "metadata_patch",
    "short_reason",
    "stored_mismatch",
    "tls_reason",
    "to_image",
]

LOG = logging.getLogger(__name__)

# Images per listing request: Glance's usual maximum (api_limit_max), reference 2.4.
PAGE_SIZE = 1000


class GlanceBackend(GlanceMembers):
    """The Backend protocol (``glancesync.backends.base``) over a real OpenStack target."""

    def __init__(
        self,
        target: Target,
        config: Config,
        chunk_size: int = CHUNK_SIZE,
        page_size: int | None = None,
        data_timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.target = target
        self.target_name = target.name
        self.images_dir = config.main.images_dir
        self.chunk_size, self.page_size = chunk_size, page_size
        # socket read timeout (not a total) of uploads and downloads: the target's
        # data_timeout option unless a caller (a test) gives its own
        self.data_timeout = target.data_timeout if data_timeout is None else data_timeout
        self.retry = retry or RetryPolicy.from_env()
        self._keystone = TargetSessions(target, self.data_timeout)

    def full_name(self, region: str) -> str:
        return full_region_name(self.target_name, region)

    def lock_key(self, region: str) -> str:
        """Names the region's Glance for the same-host lock (glancesync.regionlock)."""
        return f"{keystone_v3_url(self.target.connection.keystone_url)}|{region}"

    # ------------------------------------------------------------ keystone
    # Every request goes through these methods, so a test can replace one on an instance.

    def _auth_plugin(self) -> Any:
        return self._keystone.auth_plugin()

    def _session(self, kind: str) -> Any:
        return self._keystone.session(kind)

    def _catalog_regions(self) -> list[str]:
        return self._keystone.catalog_regions()

    def _client(self, region: str, kind: str = "data") -> Any:
        return self._keystone.client(region, kind)

    def _reason(self, exc: BaseException) -> str:
        """The cause of a failure, with object reprs and secrets removed."""
        return redact(short_reason(describe(exc)), self._keystone.secrets())

    def _cause(self, exc: BaseException) -> str:
        return "region not found" if isinstance(exc, RegionNotFound) else self._reason(exc)

    @contextmanager
    def _reported(self, text: str, kind: ErrorKind | None = None) -> Iterator[None]:
        """Any failure inside as ``BackendError("<text> Cause: <cause>")``; its kind is
        ``kind`` when given (the operation says it all), else read from the failure."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - every library failure becomes a BackendError
            raise BackendError(f"{text} Cause: {self._cause(exc)}", kind or kind_of(exc)) from None

    def regions(self) -> list[str]:
        with self._reported(
            f"{self.target_name}: Error retrieving region list.", ErrorKind.REGION_LIST
        ):
            return self._catalog_regions()

    def tenant_id(self) -> str:
        with self._reported(f"{self.target_name}: Error authenticating.", ErrorKind.AUTH):
            return str(self._session("list").get_project_id())

    # ------------------------------------------------------------ listing

    def list_images(self, region: str) -> list[Image]:
        full = self.full_name(region)
        try:
            return self._list(region, full)
        except RegionNotFound:
            raise RegionNotFound(
                f"{full}: Error retrieving image list. Cause: region not found"
            ) from None
        except Exception as exc:  # noqa: BLE001
            if is_timeout(exc):
                text = f"{full}: Timeout while retrieving image list."
                raise BackendError(text, ErrorKind.TIMEOUT) from None
            cause = self._reason(exc)
            text = f"{full}: Error retrieving image list. Cause: {cause}"
            raise BackendError(text, kind_of(exc)) from None

    def images_named(self, region: str, name: str) -> list[Image]:
        """The region's images called ``name`` (one filtered request): the check for
        another run's upload right before this run uploads (glancesync.leftovers)."""
        full = self.full_name(region)
        with self._reported(f"{full}: Error retrieving image list."):
            records = self._client(region, "list").images.list(filters={"name": name})
            return [to_image(record, full) for record in records]

    def server_now(self, region: str) -> datetime | None:
        """The region's Glance clock (the ``Date`` of an answer to its version list), so
        the age of a marked image never depends on this host's clock; None when unknown."""
        try:
            url = self._image_endpoint(region) + "/versions"
            response = self._session("list").get(url, authenticated=False, raise_exc=False)
            return parsedate_to_datetime(response.headers["Date"])
        except Exception:  # noqa: BLE001 - the caller falls back to the local clock
            return None

    def _list(self, region: str, full: str) -> list[Image]:
        """Every page of the default listing, then of the hidden images (reference 2.4).

        Glance's default listing leaves out ``os_hidden`` images; without the second
        listing a hidden master is never synchronised and a hidden copy is uploaded
        again. ``list_images_timeout`` is the "list" session's timeout, so it limits each
        page request, not the whole listing (thousands of images take many pages).
        """
        client = self._client(region, "list")
        size = self.page_size or PAGE_SIZE
        images = [to_image(record, full) for record in client.images.list(page_size=size)]
        seen = {image.id for image in images}
        hidden = client.images.list(page_size=size, filters={"os_hidden": "true"})
        images += [to_image(r, full) for r in hidden if r["id"] not in seen]
        return images

    # ------------------------------------------------------------ data

    def image_source(self, region: str, image: Image) -> ImageSource:
        """The local file ``<images_dir>/<id>`` if it exists, else the Glance API (reference 6.4).

        Opening errors surface when the upload starts reading (SourceOpenError), so the
        message names the region being uploaded to.
        """
        path = os.path.join(self.images_dir, image.id)
        if os.path.lexists(path):
            return FileSource(path, image.size, self.chunk_size)
        return ApiSource(
            lambda offset: self._master_stream(region, image.id, offset),
            image.id,
            image.size,
            self.retry,
        )

    def _image_endpoint(self, region: str) -> str:
        """The Glance URL of ``region`` from the catalog, without a version path."""
        if region not in self._catalog_regions():
            raise RegionNotFound("region not found")
        url = self._session("data").get_endpoint(
            service_type="image", interface=self.target.connection.interface, region_name=region
        )
        return unversioned(url)

    def _master_stream(self, region: str, image_id: str, offset: int) -> Iterator[bytes]:
        """GET /v2/images/<id>/file from ``offset`` on (``Range: bytes=<offset>-``).

        Through the keystoneauth session, not ``images.data()``, which takes no range.
        The request is made here, so its errors reach the caller's retry; the body is
        read lazily. Glance answers 206 to a range; a server that ignores it (200) gets
        its first ``offset`` bytes skipped, so the stream is right either way.
        """
        url = f"{self._image_endpoint(region)}/v2/images/{image_id}/file"
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = self._session("data").get(url, headers=headers, stream=True)
        if response.status_code == 206:
            check_content_range(response.headers.get("Content-Range", ""), offset)
            offset = 0
        elif response.status_code == 204:  # no data (a queued image): an empty stream
            response.close()
            return iter(())
        return ranged_body(response, offset, self.chunk_size)

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
        """Upload with retries: each attempt reads the source again and starts from a clean
        region (the previous half image is deleted first); only transient failures are
        retried (``retry.is_transient``)."""
        full = self.full_name(region)
        if source is None:
            raise BackendError(f"{full}: Upload of {master.name} Failed. Cause: no image data")
        record = UploadTransaction(
            full,
            master,
            is_public,
            properties,
            source,
            progress,
            client=lambda: self._client(region, "data"),
            reason=self._reason,
            retry=self.retry,
            store=store,
        ).run()
        return to_image(record, full)

    # ------------------------------------------------------------ multi-store regions

    def stores(self, region: str) -> list[str]:
        """The stores of the region's Glance, its default first (glance_stores)."""
        full = self.full_name(region)
        with self._reported(f"{full}: Cannot read the stores of the region."):
            http = self._client(region, "list").http_client
            return list_stores(http, self.retry, f"{full}: stores")

    def copy_to_stores(
        self, region: str, image: Image, stores: tuple[str, ...], *, timeout: float
    ) -> Image:
        """Glance's ``copy-image`` import of ``image`` into ``stores`` (glance_stores)."""
        full = self.full_name(region)
        text = f"{full}: Copy of {image.name} into store(s) {', '.join(stores)} Failed."
        with self._reported(text):
            client = self._client(region, "data")
        try:
            record = copy_into(client, image.id, stores, timeout, self.retry)
        except CopyFailed as exc:
            raise BackendError(f"{text} Cause: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the client libraries' errors, in any form
            raise BackendError(f"{text} Cause: {self._cause(exc)}", kind_of(exc)) from None
        return to_image(record, full)

    # ------------------------------------------------------------ server-side copies

    def can_import(self, region: str) -> bool:
        """Whether the region's Glance advertises glance-download (``GET /v2/info/import``);
        an error counts as no (the copy then goes through this host)."""
        try:
            _, info = self._client(region, "list").http_client.get("/v2/info/import")
            return advertises(info or {})
        except Exception as exc:  # noqa: BLE001 - the caller copies through this host
            LOG.info("%s: import methods unknown: %s", self.full_name(region), self._reason(exc))
            return False

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
        """The region's Glance copies ``master`` (an image of ``source_region``, a region of
        this target) itself; the copy is verified like an upload (glance_import)."""
        full = self.full_name(region)
        with self._reported(f"{full}: Import of {master.name} Failed."):
            client = self._client(region, "data")
        interface = self.target.import_interface or self.target.connection.interface
        record = ImportTransaction(
            full,
            master,
            is_public,
            properties,
            progress,
            client=client,
            reason=self._reason,
            request=import_request(source_region, master.id, interface),
            timeout=timeout,
            retry=self.retry,
        ).run()
        return to_image(record, full)

    # ------------------------------------------------------------ metadata

    def update(
        self,
        region: str,
        image: Image,
        name: str,
        is_public: bool,
        properties: dict[str, Any],
        attributes: Mapping[str, Any] | None = None,
    ) -> Image:
        full = self.full_name(region)
        with self._reported(f"{full}: Update of {name} failed."):
            client = self._client(region, "data")
            current = dict(client.images.get(image.id))  # not validated by glanceclient
            ops = json_patch(current, name, is_public, properties, attributes)
            if ops:
                headers = {"Content-Type": JSON_PATCH_TYPE}
                url = f"/v2/images/{image.id}"
                _, current = client.http_client.patch(url, headers=headers, data=json.dumps(ops))
            return to_image(current, full)

    def unmark(self, region: str, image: Image) -> None:
        full = self.full_name(region)
        with self._reported(f"{full}: Removing the upload marker of image {image.id} failed."):
            extra = {SOURCE_HASH: image.checksum} if image.checksum else {}
            client = self._client(region, "data")
            client.images.update(image.id, remove_props=[UPLOAD_MARKER], **extra)

    def delete(self, region: str, image_id: str) -> None:
        full = self.full_name(region)
        with self._reported(f"{full}: Deletion of image {image_id} Failed."):
            self._client(region, "data").images.delete(image_id)
