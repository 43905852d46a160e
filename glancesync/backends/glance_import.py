"""The server-side copy of the real backend: a region's Glance imports a master image.

Glance's ``glance-download`` import method (Glance 2023.1+) makes the region's Glance
fetch the image from another region of the same Keystone with the caller's token, so no
byte crosses this host (README "Server-side copies"). Around that one call the copy is
the proxy path's: the image is created with the run's upload marker (overlapping runs
and leftovers see it as any copy in progress), the import is awaited, the stored image
must have the master's checksum and multihash, then the metadata is set to exactly what
the sync computed (Glance copies some of the master's properties itself) and the marker
removed. A failed, refused or stuck import deletes the image; so do a cancel and an
interrupt (they surface through the progress callback, called at every poll).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from glancesync import regionlog
from glancesync.backends.base import UPLOAD_MARKER, ProgressCallback
from glancesync.backends.glance_errors import kind_of
from glancesync.backends.glance_records import (
    JSON_PATCH_TYPE,
    create_fields,
    json_patch,
    stored_mismatch,
)
from glancesync.backends.retry import RetryPolicy, http_status
from glancesync.errors import BackendError, ErrorKind
from glancesync.image import SOURCE_HASH, Image

LOG = logging.getLogger("glancesync.backends.glance")

METHOD = "glance-download"
# Seconds between two looks at the importing image: short at first (small images import
# in a second or two), then at most one a second: a look is one small GET, and each
# second between looks is up to a second added to the copy (bench/server_side.py).
FIRST_POLL, MAX_POLL = 0.25, 1.0
# The property Glance holds on an importing image until its task ends (the task still
# writes to the image a moment after it turns active).
TASK_LOCK = "os_glance_import_task"
# Image statuses from which an import never completes.
_DEAD = ("killed", "deleted", "pending_delete", "deactivated")


def advertises(info: Mapping[str, Any]) -> bool:
    """Whether the answer to ``GET /v2/info/import`` lists glance-download."""
    methods = info.get("import-methods") or {}
    return METHOD in (methods.get("value") or [])


def import_request(source_region: str, image_id: str, interface: str) -> dict[str, Any]:
    """The body of ``POST /v2/images/<id>/import`` that makes the region fetch the master
    image itself (Glance API reference, "Import an image", method glance-download)."""
    return {
        "method": {
            "name": METHOD,
            "glance_image_id": image_id,
            "glance_region": source_region,
            "glance_service_interface": interface,
        }
    }


def task_failure(tasks: Mapping[str, Any]) -> str | None:
    """The message of the image's latest task if it failed (``GET /v2/images/<id>/tasks``)."""
    listed = sorted(tasks.get("tasks") or [], key=lambda t: t.get("created_at") or "")
    if listed and listed[-1].get("status") == "failure":
        return " ".join(str(listed[-1].get("message") or "the import task failed").split())
    return None


class ImportFailed(Exception):
    """An import that ended without the master's image: its reason and kind."""

    def __init__(self, reason: str, kind: ErrorKind = ErrorKind.OTHER):
        super().__init__(reason)
        self.kind = kind


class ImportTransaction:
    """One server-side copy: create, import, wait, verify, set the metadata, unmark.

    ``client`` is the region's glanceclient client; ``reason`` turns an exception into the
    reported cause (secrets removed). ``clock``/``sleep`` are the test's to replace.
    """

    def __init__(
        self,
        full: str,
        master: Image,
        is_public: bool,
        properties: Mapping[str, Any],
        progress: ProgressCallback | None,
        client: Any,
        reason: Callable[[BaseException], str],
        request: Mapping[str, Any],
        timeout: float,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.full, self.master = full, master
        self.is_public, self.properties = is_public, properties
        self.progress = progress or (lambda nbytes: None)
        self.client, self.reason, self.request = client, reason, request
        self.timeout, self.clock, self.sleep = timeout, clock, sleep
        # the looks, the final PATCH and the clean-up are retried on transient failures
        # (a Glance whose task is ending may answer 5xx, its database busy)
        self.retry = retry

    def run(self) -> Any:
        """The region's record of the verified copy, or a ``BackendError``."""
        image_id = None
        try:
            fields = create_fields(self.master, self.is_public, self.properties)
            image_id = self.client.images.create(**fields)["id"]
            self.start(image_id)
            self.verify(self.wait(image_id))
            record = self.finish(image_id)
        except BaseException as exc:
            if image_id is not None:
                self.discard(image_id)
            if isinstance(exc, ImportFailed):
                raise self.failed(str(exc), exc.kind) from None
            if isinstance(exc, Exception) and not isinstance(exc, BackendError):
                raise self.failed(self.reason(exc), kind_of(exc)) from None
            raise  # a cancel, an interrupt, a BackendError already worded
        self.progress(self.master.size)
        return record

    def failed(self, cause: str, kind: ErrorKind) -> BackendError:
        text = f"{self.full}: Import of {self.master.name} ({METHOD}) Failed. Cause: {cause}"
        return BackendError(text, kind)

    def start(self, image_id: str) -> None:
        """Ask for the import; a connection the server dropped before answering is asked
        again (a lost answer to a request it took makes the second one a 409: that
        image then fails, and is deleted)."""
        http, url = self.client.http_client, f"/v2/images/{image_id}/import"
        self.retry.call(lambda: http.post(url, data=dict(self.request)), url)

    def wait(self, image_id: str) -> dict[str, Any]:
        """Look at the image until it is active; its import task's failure, a dead image
        or ``timeout`` seconds end the wait. The progress callback is called at every
        look, so a cancel or an interrupt stops the wait (and deletes the image)."""
        deadline = self.clock() + self.timeout
        pause = FIRST_POLL
        while True:
            self.progress(0)
            record = self.get(image_id)
            status = record.get("status") or ""
            if status == "active" and not record.get(TASK_LOCK):
                return record  # the task is over: it no longer writes to the image
            if status in _DEAD:
                raise ImportFailed(f"the image became {status}")
            if status != "importing" or record.get("os_glance_failed_import"):
                failure = task_failure(self.tasks(image_id))
                if failure is not None:
                    raise ImportFailed(failure)
            if self.clock() >= deadline:
                raise ImportFailed(
                    f"no copy after {self.timeout:g} s (import_timeout)", ErrorKind.TIMEOUT
                )
            self.sleep(pause)
            pause = min(pause * 1.5, MAX_POLL)

    def tasks(self, image_id: str) -> Mapping[str, Any]:
        url = f"/v2/images/{image_id}/tasks"
        _, tasks = self.retry.call(lambda: self.client.http_client.get(url), url)
        return tasks or {}

    def get(self, image_id: str) -> dict[str, Any]:
        """The image now; a dropped connection or a 5xx is tried again (``retry``): a
        long import is many looks, and a keep-alive connection the server closed between
        two of them must not fail the copy."""
        what = f"{self.full}: state of the importing image {image_id}"
        return dict(self.retry.call(lambda: self.client.images.get(image_id), what))

    def verify(self, stored: Mapping[str, Any]) -> None:
        """The region computed these from the bytes it stored: they must be the master's."""
        if not self.master.checksum:
            raise ImportFailed("the master image has no checksum to verify", ErrorKind.CONTENT)
        mismatch = stored_mismatch(stored, self.master, self.master.checksum)
        if mismatch is not None:
            raise ImportFailed(mismatch, ErrorKind.CONTENT)

    def finish(self, image_id: str) -> Any:
        """Exactly the sync's metadata (the import may have copied some of the master's
        properties), the source hash, protection, and no marker: one PATCH."""
        current = self.get(image_id)
        wanted = {k: v for k, v in self.properties.items() if k != UPLOAD_MARKER}
        ops = json_patch(current, self.master.name, self.is_public, wanted)
        ops.append({"op": "add", "path": f"/{SOURCE_HASH}", "value": self.master.checksum})
        if self.master.protected:
            ops.append({"op": "replace", "path": "/protected", "value": True})
        if UPLOAD_MARKER in current:
            ops.append({"op": "remove", "path": f"/{UPLOAD_MARKER}"})
        headers = {"Content-Type": JSON_PATCH_TYPE}
        url = f"/v2/images/{image_id}"
        http = self.client.http_client
        body = json.dumps(ops)
        _, record = self.retry.call(
            lambda: http.patch(url, headers=headers, data=body),
            f"{self.full}: metadata of {image_id}",
        )
        return record

    def discard(self, image_id: str) -> None:
        """Best effort: a leftover keeps its marker, so a later run deletes it."""
        try:
            self.retry.call(
                lambda: self.client.images.delete(image_id),
                f"delete of the importing image {image_id}",
            )
        except Exception as exc:  # noqa: BLE001 - never hides the import's own error
            if http_status(exc) == 404:
                return
            regionlog.warning(
                LOG, "could not delete the importing image %s: %s", image_id, self.reason(exc)
            )
