"""The real backend: Keystone v3 + Glance v2 through keystoneauth1 and python-glanceclient.

One ``GlanceBackend`` per target (one credential). Nothing touches the network until a
method needs it: the Keystone session is built on first use, then shared by every region
of the target. Two sessions share one auth plugin (so one token): a "list" session whose
timeout is the target's ``list_images_timeout``, and a "data" session with a long read
timeout for uploads and downloads, whose duration depends on the image size.

Every failure is a ``BackendError`` with the text of BEHAVIOUR.md 6.6; causes never
carry the password or the token.

Transfers (issue 7): an upload is retried on transient failures (``retry.RetryPolicy``,
tenacity), deleting the half image before each new attempt; a master download that
breaks is resumed with HTTP ``Range`` (``glance_data.ApiSource``); after the data is
sent, the region's image is read back and its checksum and multihash must be the
master's. Re-authentication is keystoneauth's: the auth plugin keeps the credentials and
fetches a new token whenever the current one is about to expire, so a job longer than
the token lifetime goes on (tests/integration/test_transfer_reliability.py proves it).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from glancesync import regionlog
from glancesync.backends.base import (
    UPLOAD_MARKER,
    UPLOAD_MARKER_VALUE,
    ImageSource,
    ProgressCallback,
    full_region_name,
)
from glancesync.backends.glance_data import (
    CHUNK_SIZE,
    ApiSource,
    FileSource,
    HashingReader,
    SourceOpenError,
    describe,
)
from glancesync.backends.glance_http import (
    UploadFailed,
    check_content_range,
    put_image_data,
    ranged_body,
)
from glancesync.backends.retry import RetryPolicy, http_status
from glancesync.credentials import auth_plugin, quiet_insecure_warnings
from glancesync.errors import BackendError, Cancelled, RegionNotFound
from glancesync.image import FOLLOWED, SOURCE_HASH, SOURCE_ID, Image, is_reserved, is_user_property

if TYPE_CHECKING:
    from glancesync.config import Config, Target

LOG = logging.getLogger(__name__)

# Images per listing request: Glance's usual maximum (api_limit_max), D26.
PAGE_SIZE = 1000
_JSON_PATCH = "application/openstack-images-v2.1-json-patch"
_VERSION_PATH = re.compile(r"/v\d+(\.\d+)?/?$")
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>:?\s*")
_CONNECT = re.compile(r"Unable to establish connection to (https?://[^/\s]+)")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
CERTIFICATE_FAILED = "CERTIFICATE_VERIFY_FAILED"
_TLS_HOST = re.compile(r"(https://[^/\s:]+(?::\d+)?)")
_VERIFY_WHY = re.compile(r"certificate verify failed: ([^()'\"]+)")
_INNER = re.compile(r"\b\w+(?:Error|Disconnected|Exception)\(['\"]([^'\"]+)")


def keystone_v3_url(url: str) -> str:
    """``url`` with ``/v3`` appended when it has no version path (BEHAVIOUR.md 2.4)."""
    parts = urlsplit(url.strip())
    if _VERSION_PATH.search(parts.path):
        return url.strip()
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/v3"))


def short_reason(text: str) -> str:
    """Connection failures as ``connection to <host> failed: <error>``, not a 400-char chain."""
    if CERTIFICATE_FAILED in text:
        return tls_reason(text)
    match = _CONNECT.search(text)
    if match is None:
        return _OBJECT_REPR.sub("", text)
    inner = _ERRNO.search(text) or _INNER.search(text)
    why = inner.group(1).strip() if inner else "connection failed"
    return f"connection to {match.group(1)} failed: {why}"


def tls_reason(text: str) -> str:
    """A certificate that failed verification, in one sentence that says what to set."""
    host = _TLS_HOST.search(text)
    why = _VERIFY_WHY.search(text)
    where = f" of {host.group(1)}" if host else ""
    detail = f" ({why.group(1).strip()})" if why else ""
    return (
        f"the TLS certificate{where} could not be verified{detail}; "
        "set cacert to the CA bundle that signed it"
    )


def to_image(record: Mapping[str, Any], region: str) -> Image:
    """A Glance v2 image record as the core sees it (BEHAVIOUR.md 1.4)."""
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
    )


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
    fields[SOURCE_ID] = master.id  # D22; the hash is added once the data is verified
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
    left alone, 6.5). The reserved ``glancesync_*`` properties are never touched (D22).
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


class GlanceBackend:
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
        self._lock = threading.RLock()
        self._auth: Any = None
        self._sessions: dict[str, Any] = {}
        self._clients: dict[tuple[str, str], Any] = {}

    def full_name(self, region: str) -> str:
        return full_region_name(self.target_name, region)

    def lock_key(self, region: str) -> str:
        """Names the region's Glance for the same-host lock (glancesync.regionlock)."""
        return f"{keystone_v3_url(self.target.connection.keystone_url)}|{region}"

    # ------------------------------------------------------------ keystone

    def _auth_plugin(self) -> Any:
        """Password or application credential (``glancesync.credentials``)."""
        with self._lock:
            if self._auth is None:
                conn = self.target.connection
                self._auth = auth_plugin(conn, keystone_v3_url(conn.keystone_url))
            return self._auth

    def _session(self, kind: str) -> Any:
        """The "list" or "data" session; both share the auth plugin, hence the token.

        Both verify TLS the same way: the target's ``cacert``, or nothing with
        ``insecure`` (warned about once per run by the configuration, not per request).
        """
        from keystoneauth1 import session

        with self._lock:
            if kind not in self._sessions:
                timeout = self.target.list_images_timeout if kind == "list" else self.data_timeout
                verify = self.target.connection.verify
                if verify is False:
                    quiet_insecure_warnings()
                self._sessions[kind] = session.Session(
                    auth=self._auth_plugin(), timeout=timeout, verify=verify
                )
            return self._sessions[kind]

    def _catalog_regions(self) -> list[str]:
        session = self._session("list")
        access = self._auth_plugin().get_access(session)
        endpoints = access.service_catalog.get_endpoints(
            service_type="image", interface=self.target.connection.interface
        )
        names = {ep.get("region_id") or ep.get("region") for ep in endpoints.get("image", [])}
        return sorted(name for name in names if name)

    def _client(self, region: str, kind: str = "data") -> Any:
        """A glanceclient v2 Client for ``region``; RegionNotFound when not in the catalog."""
        with self._lock:
            client = self._clients.get((region, kind))
        if client is not None:
            return client
        if region not in self._catalog_regions():
            raise RegionNotFound("region not found")
        from glanceclient import Client

        client = Client(
            "2",
            session=self._session(kind),
            region_name=region,
            interface=self.target.connection.interface,
        )
        with self._lock:
            return self._clients.setdefault((region, kind), client)

    def _reason(self, exc: BaseException) -> str:
        """The cause of a failure, with object reprs and secrets removed."""
        text = short_reason(describe(exc))
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    def _secrets(self) -> Iterable[str]:
        for secret in self.target.connection.secrets():
            if len(secret) >= 4:
                yield secret
        ref = getattr(self._auth, "auth_ref", None)
        token = getattr(ref, "auth_token", None) if ref is not None else None
        if token:
            yield token

    def regions(self) -> list[str]:
        try:
            return self._catalog_regions()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a BackendError
            cause = self._reason(exc)
            raise BackendError(
                f"{self.target_name}: Error retrieving region list. Cause: {cause}"
            ) from None

    def tenant_id(self) -> str:
        try:
            return str(self._session("list").get_project_id())
        except Exception as exc:  # noqa: BLE001
            cause = self._reason(exc)
            raise BackendError(
                f"{self.target_name}: Error authenticating. Cause: {cause}"
            ) from None

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
            if _is_timeout(exc):
                raise BackendError(f"{full}: Timeout while retrieving image list.") from None
            cause = self._reason(exc)
            raise BackendError(f"{full}: Error retrieving image list. Cause: {cause}") from None

    def images_named(self, region: str, name: str) -> list[Image]:
        """The region's images called ``name`` (one filtered request): the check for
        another run's upload right before this run uploads (glancesync.leftovers)."""
        full = self.full_name(region)
        try:
            records = self._client(region, "list").images.list(filters={"name": name})
            return [to_image(record, full) for record in records]
        except Exception as exc:  # noqa: BLE001
            cause = "region not found" if isinstance(exc, RegionNotFound) else self._reason(exc)
            raise BackendError(f"{full}: Error retrieving image list. Cause: {cause}") from None

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
        """Every page of the default listing, then of the hidden images (D26).

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
        """The local file ``<images_dir>/<id>`` if it exists, else the Glance API (D4).

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
        return _VERSION_PATH.sub("", url).rstrip("/")

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
    ) -> Image:
        """Upload with retries: each attempt reads the source again and starts from a clean
        region (the previous half image is deleted first); only transient failures are
        retried (``retry.is_transient``)."""
        full = self.full_name(region)
        if source is None:
            raise BackendError(f"{full}: Upload of {master.name} Failed. Cause: no image data")
        leftovers: list[str] = []
        once = _OncePerByte(progress)
        try:
            record = self.retry.call(
                lambda: self._attempt(
                    region, full, master, is_public, properties, source, once, leftovers
                ),
                f"{full}: upload of {master.name}",
            )
        except BackendError:
            raise
        except UploadFailed as failed:
            raise BackendError(f"{full}: Upload of {master.name} Failed. Cause: {failed}") from None
        except Exception as exc:  # noqa: BLE001
            cause = self._reason(exc.cause if isinstance(exc, _TransferError) else exc)
            if isinstance(exc, RegionNotFound):
                cause = "region not found"
            raise BackendError(f"{full}: Upload of {master.name} Failed. Cause: {cause}") from None
        finally:
            self._discard_all(region, leftovers)
        return to_image(record, full)

    def _attempt(
        self,
        region: str,
        full: str,
        master: Image,
        is_public: bool,
        properties: Mapping[str, Any],
        source: ImageSource,
        progress: _OncePerByte,
        leftovers: list[str],
    ) -> Any:
        """One try: a fresh read of the source, a new image; failures as _TransferError."""
        progress.restart()
        reader = self._open(full, master, source, progress)
        try:
            return self._send(region, master, is_public, properties, reader, leftovers)
        finally:
            reader.close()  # stops its prefetch of the master if the upload ended early

    def _send(
        self,
        region: str,
        master: Image,
        is_public: bool,
        properties: Mapping[str, Any],
        reader: HashingReader,
        leftovers: list[str],
    ) -> Any:
        client = self._client(region, "data")
        self._discard_all(region, leftovers)  # a previous try's image the region kept
        try:
            return self._create_and_send(client, master, is_public, properties, reader, leftovers)
        except (UploadFailed, RegionNotFound, Cancelled):
            raise
        except Exception as exc:  # noqa: BLE001
            cause = reader.failure or exc
            if isinstance(cause, Cancelled):
                raise cause from None  # a cancel between chunks: never retried nor rewrapped
            raise _TransferError(cause, self._reason(cause)) from cause

    def _open(
        self,
        full: str,
        master: Image,
        source: ImageSource | None,
        progress: ProgressCallback | None,
    ) -> HashingReader:
        """A reader already holding the first chunk; errors here leave nothing behind."""
        try:
            reader = HashingReader(source, master.os_hash_algo, progress)
        except ValueError:
            cause = f"unsupported hash algorithm {master.os_hash_algo}"
            raise BackendError(f"{full}: Upload of {master.name} Failed. Cause: {cause}") from None
        try:
            reader.open()
        except (SourceOpenError, OSError) as exc:
            cause = exc.reason if isinstance(exc, SourceOpenError) else self._reason(exc)
            raise BackendError(
                f"{full}: Cannot open the image {master.name} to upload. Cause: {cause}"
            ) from None
        return reader

    def _create_and_send(
        self,
        client: Any,
        master: Image,
        is_public: bool,
        properties: Mapping[str, Any],
        reader: HashingReader,
        leftovers: list[str],
    ) -> Any:
        """Create, upload, verify, then protect and unmark; the image is deleted on failure.

        The size goes with the data (``x-openstack-image-size``) so stores such as RBD
        can allocate it up front (issue 7, item 5).
        """
        image_id = None
        try:
            image_id = client.images.create(**create_fields(master, is_public, properties))["id"]
            size = master.size if master.size > 0 else None
            put_image_data(client, image_id, reader, size, master)
            if reader.failure is not None:
                # A source error ends the stream like a normal end; never let a layer that
                # swallowed it turn a truncated upload into a success.
                raise reader.failure
            stored = client.images.get(image_id)
            mismatch = reader.mismatch(master.checksum, master.os_hash_value)
            mismatch = mismatch or stored_mismatch(stored, master, reader.md5.hexdigest())
            if mismatch is not None:
                raise UploadFailed(mismatch)
            extra: dict[str, Any] = {SOURCE_HASH: reader.md5.hexdigest()}  # D22
            if master.protected:
                extra["protected"] = True
            return client.images.update(image_id, remove_props=[UPLOAD_MARKER], **extra)
        except BaseException:
            if image_id is not None and not self._discard(client, image_id):
                leftovers.append(image_id)
            raise

    def _discard(self, client: Any, image_id: str) -> bool:
        """Best-effort removal of a half-created image; leftovers keep the upload marker.

        True when the image is gone (deleted now, or already: 404). A transient refusal
        is retried like a transfer: a Glance still tearing down the cancelled PUT may
        answer the first delete with a 500.
        """
        what = f"delete of the half-uploaded image {image_id}"
        try:
            self.retry.call(lambda: client.images.delete(image_id), what)
        except Exception as exc:  # noqa: BLE001
            if http_status(exc) == 404:
                return True
            reason = self._reason(exc)
            regionlog.warning(
                LOG, "could not delete the half-uploaded image %s: %s", image_id, reason
            )
            return False
        return True

    def _discard_all(self, region: str, leftovers: list[str]) -> None:
        """Delete the half images earlier tries could not (their region was down then)."""
        if not leftovers:
            return
        try:
            client = self._client(region, "data")
        except Exception:  # noqa: BLE001 - the next try, or the final report, will say why
            return
        leftovers[:] = [i for i in leftovers if not self._discard(client, i)]

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
        try:
            client = self._client(region, "data")
            current = dict(client.images.get(image.id))  # not validated by glanceclient
            ops = json_patch(current, name, is_public, properties, attributes)
            if ops:
                headers = {"Content-Type": _JSON_PATCH}
                url = f"/v2/images/{image.id}"
                _, current = client.http_client.patch(url, headers=headers, data=json.dumps(ops))
            return to_image(current, full)
        except Exception as exc:  # noqa: BLE001
            cause = "region not found" if isinstance(exc, RegionNotFound) else self._reason(exc)
            raise BackendError(f"{full}: Update of {name} failed. Cause: {cause}") from None

    def delete(self, region: str, image_id: str) -> None:
        full = self.full_name(region)
        try:
            self._client(region, "data").images.delete(image_id)
        except Exception as exc:  # noqa: BLE001
            cause = "region not found" if isinstance(exc, RegionNotFound) else self._reason(exc)
            raise BackendError(
                f"{full}: Deletion of image {image_id} Failed. Cause: {cause}"
            ) from None


class _TransferError(Exception):
    """A failed upload try; ``cause`` is what went wrong (the source's error if it failed).

    The retry decision looks at ``cause`` only (its ``__cause__``), so an error raised by
    the source is judged by itself, not by how the HTTP stack wrapped it.
    """

    def __init__(self, cause: BaseException, reason: str):
        super().__init__(reason)  # the text the retry log shows (secrets removed)
        self.cause = cause


class _OncePerByte:
    """Progress that counts each byte once across tries: a retry resends bytes already
    reported, and a progress bar must not go past 100 %."""

    def __init__(self, progress: ProgressCallback | None):
        self.progress = progress
        self.reported = 0
        self.sent = 0

    def restart(self) -> None:
        self.sent = 0

    def __call__(self, count: int) -> None:
        self.sent += count
        new = self.sent - self.reported
        if new > 0:
            self.reported = self.sent
            if self.progress is not None:
                self.progress(new)


def stored_mismatch(record: Mapping[str, Any], master: Image, computed_md5: str) -> str | None:
    """Why the region's stored image is not the master's content (D3), or None.

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


def _is_timeout(exc: BaseException) -> bool:
    """True if a timeout is anywhere in the exception chain (glanceclient rewraps them)."""
    from keystoneauth1 import exceptions as ksa

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ksa.ConnectTimeout, TimeoutError)):
            return True
        if "timed out" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False
