"""Upload progress on a terminal (bytes, rate, ETA), silent elsewhere.

tqdm is used because it is maintained, thread-safe with several bars, and already
computes rate and ETA; log files never see it.
"""

from __future__ import annotations

import threading
from typing import TextIO

from glancesync.backends.base import ProgressCallback
from glancesync.executor import ProgressFactory

_positions: dict[str, int] = {}
_lock = threading.Lock()


def _position(region: str) -> int:
    with _lock:
        return _positions.setdefault(region, len(_positions))


def progress_factory(stream: TextIO) -> ProgressFactory | None:
    """A factory of per-upload callbacks, or None when ``stream`` is not a terminal."""
    if not hasattr(stream, "isatty") or not stream.isatty():
        return None
    from tqdm import tqdm

    def start(region: str, name: str, size: int) -> ProgressCallback:
        bar = tqdm(
            total=size,
            desc=f"{region}: {name}",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=stream,
            leave=False,
            position=_position(region),
        )

        def advance(nbytes: int) -> None:
            bar.update(nbytes)
            if bar.n >= size:
                bar.close()

        return advance

    return start
