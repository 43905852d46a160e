"""HTTP details of Glance's image data API that glanceclient does not offer.

An image-data ``PUT /v2/images/<id>/file`` that announces the size and sends pieces Glance
reads cheaply, and the body of a ranged ``GET`` used to resume master downloads. Kept
apart from the backend so ``glance.py`` reads as the sync protocol (create, send, verify,
clean up).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from glancesync.backends.glance_data import CHUNK_SIZE, HashingReader
from glancesync.backends.retry import Permanent
from glancesync.image import Image

# Bytes per chunk of the chunked PUT body: 64-256 KiB cost the target Glance least CPU
# (gunicorn reads a chunk at a time; bigger chunks are copied again per 64 KiB read).
SEND_PIECE = 128 * 1024


class UploadFailed(Permanent):
    """An upload failure whose text is already the cause to report (never retried)."""


def check_content_range(header: str, offset: int) -> None:
    """A 206 must start where we asked (``bytes <offset>-<end>/<size>``)."""
    match = re.match(r"bytes (\d+)-", header.strip())
    if match is None or int(match.group(1)) != offset:
        raise ValueError(f"unexpected Content-Range {header!r} for offset {offset}")


def ranged_body(response: Any, skip: int, chunk_size: int) -> Iterator[bytes]:
    """The response body in chunks, without its first ``skip`` bytes; closes the response."""
    try:
        for chunk in response.iter_content(chunk_size):
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            if skip:
                chunk, skip = chunk[skip:], 0
            yield chunk
    finally:
        response.close()


def put_image_data(
    client: Any,
    image_id: str,
    reader: HashingReader,
    size: int | None,
    master: Image,
    store: str = "",
) -> None:
    """``PUT /v2/images/<id>/file`` in pieces of ``SEND_PIECE`` bytes, chunked encoding.

    The size goes in ``x-openstack-image-size`` (stores such as RBD pre-size with it), but
    not as a ``Content-Length``: gunicorn, which serves Glance here, reads a sized body a
    megabyte per ``recv`` and copies the rest of that buffer on every 64 KiB read Glance
    makes, while a chunked body of small pieces is read piece by piece. Measured on the
    testbed (``bench/framing.py``, a 200 MiB body from memory): the target Glance spends
    0.9 s of CPU on a chunked body against 1.5 s on a sized one, and the upload takes
    1.1 s against 1.7 s. The pieces are views of the reader's chunks: nothing is copied.

    The request goes through glanceclient's keystoneauth adapter (endpoint, token, user
    agent) and its answer through glanceclient's error mapping, so failures read and retry
    as with ``images.upload``. A client that is not such an adapter (a test double) gets
    the plain ``images.upload``.
    """
    from keystoneauth1 import adapter

    http = getattr(client, "http_client", None)
    if not isinstance(http, adapter.Adapter) or not hasattr(http, "_handle_response"):
        extra = {"backend": store} if store else {}
        client.images.upload(image_id, reader, image_size=size, **extra)
        return
    from glanceclient import exc as gexc
    from keystoneauth1 import exceptions as ksa

    url = f"/v2/images/{image_id}/file"
    headers = {"Content-Type": "application/octet-stream"}
    if size:
        headers["x-openstack-image-size"] = str(size)
    if store:  # multi-store Glance: the store the data goes to (glancesync.stores)
        headers["X-Image-Meta-Store"] = store
    body = _BoundedBody(reader, size, master)
    try:
        response = adapter.Adapter.request(
            http, url, "PUT", headers=headers, data=iter(body), raise_exc=False
        )
    except ksa.ConnectTimeout as e:  # glanceclient's mapping (SessionClient.request)
        raise gexc.InvalidEndpoint(message=f"Error communicating with {_url(http, url)} {e}") from e
    except ksa.ConnectFailure as e:
        raise gexc.CommunicationError(
            message=f"Error finding address for {_url(http, url)}: {e}"
        ) from e
    http._handle_response(response)


def _url(http: Any, path: str) -> str:
    try:
        return f"{http.get_endpoint().rstrip('/')}/{path.lstrip('/')}"
    except Exception:  # noqa: BLE001 - only for the message
        return path


class _BoundedBody:
    """The reader's chunks as request body pieces, never more than the announced ``size``.

    Source bytes beyond ``size`` are read (and hashed) but not sent; a source that ends
    early or goes on too long fails the upload with the checksum mismatch it causes (the
    same report as when Glance had stored such bytes). ``size`` None: no bound.
    """

    def __init__(self, reader: HashingReader, size: int | None, master: Image):
        self.reader, self.size, self.master = reader, size, master

    def __iter__(self) -> Iterator[memoryview]:
        left = self.size if self.size else None
        while chunk := self.reader.read(CHUNK_SIZE):
            if left is not None:
                if len(chunk) > left:
                    yield from _pieces(chunk[:left])
                    while self.reader.read(CHUNK_SIZE):
                        pass  # the rest is only hashed: the report gives the whole source's md5
                    self._fail()
                left -= len(chunk)
            yield from _pieces(chunk)
        if left:
            self._fail()

    def _fail(self) -> None:
        reason = self.reader.mismatch(self.master.checksum, self.master.os_hash_value)
        raise UploadFailed(
            reason or f"size mismatch (expected {self.size}, got {self.reader.sent})"
        )


def _pieces(chunk: bytes) -> Iterator[memoryview]:
    view = memoryview(chunk)
    for start in range(0, len(view), SEND_PIECE):
        yield view[start : start + SEND_PIECE]
