"""Faults staged on the master image stream, for tests of resumed downloads.

The product's ``ApiSource`` takes a plain ``open_stream(offset)``; a test wraps that
opener so each stream it opens passes through a fault first (break it after N bytes,
kill a server mid-way...). The hook lives here, not in the backend: fault injection
stays out of the real code path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from glancesync.backends.glance_data import StreamOpener

# Wraps each opened stream (given its offset), e.g. to break it once mid-way.
StreamFault = Callable[[Iterator[bytes], int], Iterator[bytes]]


def with_fault(open_stream: StreamOpener, fault: StreamFault) -> StreamOpener:
    """``open_stream`` whose every stream goes through ``fault``."""

    def opener(offset: int) -> Iterator[bytes]:
        return fault(iter(open_stream(offset)), offset)

    return opener
