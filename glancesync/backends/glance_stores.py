"""The Glance calls of multi-store regions (glancesync.stores): the region's stores, and
Glance's ``copy-image`` import, which copies an active image into more of its own stores
server-side (no byte crosses this host).

``GET /v2/info/stores`` lists the stores (404 on a Glance without multi-store);
``POST /v2/images/<id>/import`` with ``{"method": {"name": "copy-image"}, "stores": [..]}``
starts the copy (Glance's default policy allows it to admins only); the image's
``stores`` field grows as each copy ends, and ``os_glance_failed_import`` names the
stores whose copy failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from glancesync.backends.glance_records import record_stores
from glancesync.backends.retry import RetryPolicy, http_status

METHOD = "copy-image"
FIRST_POLL, MAX_POLL = 0.25, 1.0
TASK_LOCK = "os_glance_import_task"  # held on the image while its import task runs
FAILED = "os_glance_failed_import"


class CopyFailed(Exception):
    """A copy into stores that ended without the image in all of them."""


def store_names(info: Mapping[str, Any]) -> list[str]:
    """The ids of ``GET /v2/info/stores``, the default store first."""
    listed = [s for s in info.get("stores") or [] if s.get("id")]
    default = [s["id"] for s in listed if s.get("default")]
    return default + [s["id"] for s in listed if not s.get("default")]


def list_stores(http: Any, retry: RetryPolicy, what: str) -> list[str]:
    """The region's stores; [] when its Glance is not multi-store (404)."""
    try:
        _, info = retry.call(lambda: http.get("/v2/info/stores"), what)
    except Exception as exc:
        if http_status(exc) in (404, 400):
            return []
        raise
    return store_names(info or {})


def copy_request(stores: tuple[str, ...]) -> dict[str, Any]:
    """The body of ``POST /v2/images/<id>/import`` that copies the image into ``stores``."""
    return {"method": {"name": METHOD}, "stores": list(stores), "all_stores_must_succeed": True}


def copy_state(record: Mapping[str, Any], stores: tuple[str, ...]) -> str | None:
    """``done``, ``None`` (still copying) or the reason the copy failed."""
    failed = [s for s in str(record.get(FAILED) or "").split(",") if s.strip() in stores]
    if failed:
        return f"Glance could not copy the image into store(s) {', '.join(failed)}"
    if record.get("status") != "active":
        return f"the image became {record.get('status')}"
    there = set(record_stores(record))
    if all(s in there for s in stores) and not record.get(TASK_LOCK):
        return "done"
    return None


def copy_into(
    client: Any,
    image_id: str,
    stores: tuple[str, ...],
    timeout: float,
    retry: RetryPolicy,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Start the copy and look at the image until it is in every store (its record), the
    copy fails or ``timeout`` seconds pass (CopyFailed with the reason)."""
    url = f"/v2/images/{image_id}/import"
    retry.call(lambda: client.http_client.post(url, data=copy_request(stores)), url)
    deadline = clock() + timeout
    pause = FIRST_POLL
    while True:
        record = dict(retry.call(lambda: client.images.get(image_id), f"image {image_id}"))
        state = copy_state(record, stores)
        if state == "done":
            return record
        if state is not None:
            raise CopyFailed(state)
        if clock() >= deadline:
            raise CopyFailed(f"not in every store after {timeout:g} s (import_timeout)")
        sleep(pause)
        pause = min(pause * 1.5, MAX_POLL)
