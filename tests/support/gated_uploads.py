"""A backend wrapper whose uploads stop mid-way until the test opens a gate, so a test can
look at (or cancel) a task while it uploads."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask

from app.regions import core

CHUNKS = 4


class GatedUploads:
    """A backend whose uploads send ``CHUNKS`` progress chunks, waiting at the gate after
    the first; the wrapped mock stores the image only once every chunk went through."""

    def __init__(self, inner: Any, started: threading.Event, gate: threading.Event):
        self.inner, self.started, self.gate = inner, started, gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upload(self, region, master, is_public, properties, source, progress=None):
        chunk = master.size // CHUNKS
        for index in range(CHUNKS):
            if progress is not None:
                progress(chunk if index < CHUNKS - 1 else master.size - chunk * index)
            if index == 0:
                self.started.set()
                assert self.gate.wait(60), "the test never opened the gate"
        return self.inner.upload(region, master, is_public, properties, source, None)


def burgos_images(app: Flask) -> list[str]:
    with app.app_context():
        return [
            image.name for image in core().glancesync().backends["master"].store.images("Burgos")
        ]
