"""The upload transaction of the real backend: one image to one region, retried.

Each attempt reads the source again into a fresh ``HashingReader`` and starts from a
clean region: the half image a previous attempt left is deleted first. The steps of an
attempt are: open the source (its first chunk, before any image exists), create the
image, send the data, read the stored image back and compare its checksum and multihash
with the master's, then protect it and remove the upload marker. Any failure deletes the
half image. Only transient failures are retried (``retry.is_transient``, tenacity).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from glancesync import regionlog
from glancesync.backends.base import UPLOAD_MARKER, ImageSource, ProgressCallback
from glancesync.backends.glance_data import HashingReader, SourceOpenError
from glancesync.backends.glance_errors import kind_of
from glancesync.backends.glance_http import UploadFailed, put_image_data
from glancesync.backends.glance_records import create_fields, stored_mismatch
from glancesync.backends.retry import RetryPolicy, http_status
from glancesync.errors import BackendError, Cancelled, ErrorKind, RegionNotFound
from glancesync.image import SOURCE_HASH, Image

LOG = logging.getLogger("glancesync.backends.glance")

Reason = Callable[[BaseException], str]


class UploadTransaction:
    """One ``upload`` call: its attempts, the clean-up of half images, the final error.

    ``client`` gives the region's glanceclient client (asked again at each attempt: the
    region may have been unreachable); ``reason`` turns an exception into the reported
    cause (secrets removed).
    """

    def __init__(
        self,
        full: str,
        master: Image,
        is_public: bool,
        properties: Mapping[str, Any],
        source: ImageSource,
        progress: ProgressCallback | None,
        client: Callable[[], Any],
        reason: Reason,
        retry: RetryPolicy,
        store: str = "",
    ) -> None:
        self.full, self.master = full, master
        self.is_public, self.properties, self.source = is_public, properties, source
        self.progress = _OncePerByte(progress)
        self.client, self.reason, self.retry = client, reason, retry
        self.leftovers: list[str] = []  # half images a failed delete left in the region
        self.store = store  # the multi-store Glance's store of the data ("" its default)

    def run(self) -> Any:
        """The attempts; the stored record, or a ``BackendError`` with the final cause."""
        try:
            return self.retry.call(self.attempt, f"{self.full}: upload of {self.master.name}")
        except BackendError:
            raise  # already final: a cancel, a missing region, a source that cannot be read
        except UploadFailed as failed:
            raise self.failed(str(failed), ErrorKind.CONTENT) from None
        except _TransferError as exc:
            raise self.failed(self.reason(exc.cause), kind_of(exc.cause)) from None
        except Exception as exc:  # noqa: BLE001 - the client libraries' errors, in any form
            raise self.failed(self.reason(exc), kind_of(exc)) from None
        finally:
            self.discard_leftovers()

    def failed(self, cause: str, kind: ErrorKind) -> BackendError:
        return BackendError(
            f"{self.full}: Upload of {self.master.name} Failed. Cause: {cause}", kind
        )

    def attempt(self) -> Any:
        """One try: a fresh read of the source, a new image; failures as _TransferError."""
        self.progress.restart()
        reader = self.open_reader()
        try:
            return self.send(reader)
        finally:
            reader.close()  # stops its prefetch of the master if the upload ended early

    def open_reader(self) -> HashingReader:
        """A reader already holding the first chunk; errors here leave nothing behind."""
        try:
            reader = HashingReader(self.source, self.master.os_hash_algo, self.progress)
        except ValueError:
            cause = f"unsupported hash algorithm {self.master.os_hash_algo}"
            raise self.failed(cause, ErrorKind.OTHER) from None
        try:
            reader.open()
        except SourceOpenError as exc:
            raise self.cannot_open(exc.reason, exc.kind) from None
        except OSError as exc:
            raise self.cannot_open(self.reason(exc), kind_of(exc)) from None
        return reader

    def cannot_open(self, cause: str, kind: ErrorKind) -> BackendError:
        text = f"{self.full}: Cannot open the image {self.master.name} to upload. Cause: {cause}"
        return BackendError(text, kind)

    def send(self, reader: HashingReader) -> Any:
        """Create and fill the image in a clean region; failures as _TransferError."""
        client = self.client()
        self.discard_leftovers(client)  # a previous try's image the region kept
        try:
            return self.create_and_send(client, reader)
        except (UploadFailed, RegionNotFound, Cancelled):
            raise
        except Exception as exc:  # noqa: BLE001 - judged by the retry, reported by run()
            cause = reader.failure or exc
            if isinstance(cause, Cancelled):
                raise cause from None  # a cancel between chunks: never retried nor rewrapped
            raise _TransferError(cause, self.reason(cause)) from cause

    def create_and_send(self, client: Any, reader: HashingReader) -> Any:
        """Create, upload, verify, then protect and unmark; the image is deleted on failure.

        The size goes with the data (``x-openstack-image-size``) so stores such as RBD
        can allocate it up front (issue 7, item 5).
        """
        master = self.master
        image_id = None
        try:
            fields = create_fields(master, self.is_public, self.properties)
            image_id = client.images.create(**fields)["id"]
            size = master.size if master.size > 0 else None
            put_image_data(client, image_id, reader, size, master, self.store)
            if reader.failure is not None:
                # A source error ends the stream like a normal end; never let a layer that
                # swallowed it turn a truncated upload into a success.
                raise reader.failure
            self.verify(client.images.get(image_id), reader)
            extra: dict[str, Any] = {SOURCE_HASH: reader.md5.hexdigest()}  # reference 1.4
            if master.protected:
                extra["protected"] = True
            return client.images.update(image_id, remove_props=[UPLOAD_MARKER], **extra)
        except BaseException:
            if image_id is not None and not self.discard(client, image_id):
                self.leftovers.append(image_id)
            raise

    def verify(self, stored: Mapping[str, Any], reader: HashingReader) -> None:
        """The bytes read and the bytes the region stored must both be the master's."""
        mismatch = reader.mismatch(self.master.checksum, self.master.os_hash_value)
        mismatch = mismatch or stored_mismatch(stored, self.master, reader.md5.hexdigest())
        if mismatch is not None:
            raise UploadFailed(mismatch)

    def discard(self, client: Any, image_id: str) -> bool:
        """Best-effort removal of a half-created image; leftovers keep the upload marker.

        True when the image is gone (deleted now, or already: 404). A transient refusal
        is retried like a transfer: a Glance still tearing down the cancelled PUT may
        answer the first delete with a 500.
        """
        what = f"delete of the half-uploaded image {image_id}"
        try:
            self.retry.call(lambda: client.images.delete(image_id), what)
        except Exception as exc:  # noqa: BLE001 - a clean-up never hides the upload's error
            if http_status(exc) == 404:
                return True
            regionlog.warning(
                LOG, "could not delete the half-uploaded image %s: %s", image_id, self.reason(exc)
            )
            return False
        return True

    def discard_leftovers(self, client: Any = None) -> None:
        """Delete the half images earlier tries could not (their region was down then)."""
        if not self.leftovers:
            return
        if client is None:
            try:
                client = self.client()
            except Exception:  # noqa: BLE001 - the next try, or the final report, will say why
                return
        self.leftovers[:] = [i for i in self.leftovers if not self.discard(client, i)]


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
