"""Pausing Python's cyclic garbage collector around bulk work on many small objects.

Loading a big backup and computing the statuses of tens of thousands of images create an
object per image and region and no reference cycles; the cyclic collector would still
rescan the growing heap again and again, which makes such runs grow faster than linearly
(see bench/show_status.py). Reference counting still frees everything as usual.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
