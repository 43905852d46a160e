"""HTTP details of Glance's image data API that glanceclient does not offer.

A sized ``PUT /v2/images/<id>/file`` (Content-Length instead of chunked encoding) and the
body of a ranged ``GET`` used to resume master downloads. Kept apart from the backend so
``glance.py`` reads as the sync protocol (create, send, verify, clean up).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from glancesync.backends.glance_data import CHUNK_SIZE, HashingReader
from glancesync.backends.retry import Permanent
from glancesync.image import Image


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
    client: Any, image_id: str, reader: HashingReader, size: int | None, master: Image
) -> None:
    """``PUT /v2/images/<id>/file``: what ``client.images.upload`` does, with a Content-Length.

    glanceclient always sends a file-like body with chunked transfer encoding: one more
    copy of every chunk on this side (the chunk framing) and a pure-Python chunk parser on
    the Glance side. When the size is known the body goes out with ``Content-Length``
    instead, chunk by chunk as the reader gives them (no copy). The request goes through
    the same glanceclient adapter (endpoint, token, user agent) and its answer through the
    same error mapping, so failures read and retry as before. A client that is not a
    keystoneauth adapter (a test double) gets the plain ``images.upload``.
    """
    from keystoneauth1 import adapter

    http = getattr(client, "http_client", None)
    if not size or not isinstance(http, adapter.Adapter) or not hasattr(http, "_handle_response"):
        client.images.upload(image_id, reader, image_size=size)
        return
    from glanceclient import exc as gexc
    from keystoneauth1 import exceptions as ksa

    url = f"/v2/images/{image_id}/file"
    headers = {"Content-Type": "application/octet-stream", "x-openstack-image-size": str(size)}
    body = _SizedBody(reader, size, master)
    try:
        response = adapter.Adapter.request(
            http, url, "PUT", headers=headers, data=body, raise_exc=False
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


class _SizedBody:
    """The reader's chunks as a request body of exactly ``size`` bytes (``len()`` = size).

    Source bytes beyond ``size`` are read (and hashed) but not sent; a source that ends
    early or goes on too long fails the upload with the checksum mismatch it causes (the
    same report as when such bytes were sent chunked and Glance stored them).
    """

    def __init__(self, reader: HashingReader, size: int, master: Image):
        self.reader, self.size, self.master = reader, size, master

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        left = self.size
        while piece := self.reader.read(CHUNK_SIZE):
            if len(piece) > left:
                piece, left = piece[:left], 0
                if piece:
                    yield piece
                while self.reader.read(CHUNK_SIZE):
                    pass  # the rest is only hashed: the report gives the whole source's md5
                self._fail()
            left -= len(piece)
            yield piece
        if left:
            self._fail()

    def _fail(self) -> None:
        reason = self.reader.mismatch(self.master.checksum, self.master.os_hash_value)
        raise UploadFailed(
            reason or f"size mismatch (expected {self.size}, got {self.reader.sent})"
        )
