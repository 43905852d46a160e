"""Fault injection of the offline mock: scenarios of "a region that fails mid-way".

* ``store.fail_on(region_full, operation, after=N, cause="injected fault")``: the first
  ``N`` calls of ``operation`` on that region succeed; call ``N + 1`` and every later
  one raise the ``BackendError`` the real backend would raise there (reference 6.6),
  with ``cause`` as the reason. ``after=0`` fails at once. A failed call changes nothing.
* operations: ``list`` (list_images), ``timeout`` (list_images, timeout message),
  ``open`` (image_source), ``upload``, ``update``, ``delete``, and ``write`` (any of
  upload/update/delete, counted together).
* The same from a folder: a file ``mock_faults`` next to the backups, one
  ``<region full name>,<operation>,<N>`` per line; empty lines and lines starting with
  ``#`` are ignored. It is read by ``MockStore.load`` and ``MockStore.persistent`` (so
  ``GLANCESYNC_USE_MOCK=S`` activates ``S/mock_faults``); counters live in memory and
  restart with each process.

The faults are kept apart from the images (``glancesync.backends.mock_store``): they
change with the scenarios' needs, the store with Glance's behaviour.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from glancesync.errors import ConfigError

FAULTS_FILE = "mock_faults"
DEFAULT_CAUSE = "injected fault"
WRITE_OPERATIONS = ("upload", "update", "delete")
OPERATIONS = ("list", "timeout", "open", *WRITE_OPERATIONS, "write")


@dataclass
class _Fault:
    after: int
    cause: str
    calls: int = 0


class Faults:
    """The faults of one store and their call counters; the store's lock guards them."""

    def __init__(self) -> None:
        self._faults: dict[tuple[str, str], _Fault] = {}

    def add(self, region: str, operation: str, after: int = 0, cause: str = DEFAULT_CAUSE) -> None:
        """Make call ``after + 1`` (and later ones) of ``operation`` on ``region`` fail."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown mock operation {operation!r}; use one of {OPERATIONS}")
        if after < 0:
            raise ValueError("after must be >= 0")
        self._faults[(region, operation)] = _Fault(after, cause)

    def clear(self) -> None:
        self._faults.clear()

    def load(self, folder: str) -> None:
        """Read ``<folder>/mock_faults`` when present (format in the module docstring)."""
        path = os.path.join(folder, FAULTS_FILE)
        if not os.path.isfile(path):
            return
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the file: {exc}", source=path) from None
        for lineno, line in enumerate(lines, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                self._line(line, lineno, path)

    def _line(self, line: str, lineno: int, path: str) -> None:
        parts = [part.strip() for part in line.rsplit(",", 2)]
        if len(parts) != 3 or not parts[0]:
            raise ConfigError(f"line {lineno}: expected <region>,<operation>,<n>", source=path)
        region, operation, count = parts
        if operation not in OPERATIONS:
            known = ", ".join(OPERATIONS)
            problem = f"line {lineno}: operation must be one of {known}, not {operation!r}"
            raise ConfigError(problem, source=path)
        if not count.isascii() or not count.isdigit():
            raise ConfigError(
                f"line {lineno}: <n> must be a whole number, not {count!r}", source=path
            )
        self.add(region, operation, int(count))

    def check(self, region: str, operation: str) -> str | None:
        """The cause to raise with, or None; counts the call. Caller holds the lock."""
        keys = [(region, operation)]
        if operation in WRITE_OPERATIONS:
            keys.append((region, "write"))
        cause = None
        for key in keys:
            fault = self._faults.get(key)
            if fault is not None:
                fault.calls += 1
                if fault.calls > fault.after and cause is None:
                    cause = fault.cause
        return cause
