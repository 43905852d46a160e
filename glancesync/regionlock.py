"""One sync of a region at a time on this host: a lock file per region (D20).

Every real sync of a region (CLI, ``--parallel``, the REST service) holds
``<lock_dir>/<region>-<key>.lock`` with ``flock`` while it lists, plans and executes the
region. ``flock`` rather than a pid file: the kernel drops the lock when its process dies,
however it dies, so a killed run never leaves a stale lock behind; and two opens of the
same file conflict even inside one process, so the service's threads exclude each other
too. The standard library is enough here (``fcntl``); a wait must stay interruptible by
the run's cancel check, which a blocking lock call would not be.

The file name hashes the backend's ``lock_key(region)`` (the real backend: Keystone URL
and region name; the mock: its store's folder, or the store object, and the region): two
configurations that name one cloud differently still share the lock, two clouds (or two
mock stores) with a same-named region do not.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable

DEFAULT_LOCK_DIR = "/run/lock/glancesync"
POLL = 0.1
BUSY = "another glancesync run is syncing this region"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class RegionBusy(Exception):
    """The region's lock is held by another run for longer than ``lock_wait``."""


def usable_lock_dir(preferred: str) -> str:
    """``preferred`` when it exists or can be made (and written), else a folder in the
    temp folder: a lock that works in the wrong place beats no sync at all."""
    for folder in (preferred, os.path.join(tempfile.gettempdir(), "glancesync-locks")):
        try:
            os.makedirs(folder, mode=0o1777 if folder != preferred else 0o755, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK | os.X_OK):
            return folder
    raise OSError(f"no writable lock folder ({preferred} nor the temp folder)")


def lock_path(folder: str, key: str, full_region: str) -> str:
    """``<folder>/<region>-<hash of key>.lock``; ``key`` is the backend's ``lock_key``."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return os.path.join(folder, f"{_UNSAFE.sub('_', full_region)}-{digest}.lock")


class RegionLock:
    """The lock of one region, taken with ``acquire`` and given back with ``release``.

    ``waited`` tells whether another run held it when asked; ``freed_at`` is when the
    lock was last given back (the file's mtime, touched by ``release``): a listing of
    the region made before then may miss what that run did.
    """

    def __init__(self, path: str):
        self.path = path
        self.waited = False
        self.freed_at = 0.0
        self._fd: int | None = None

    def acquire(
        self,
        wait: float,
        should_cancel: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Take the lock, waiting up to ``wait`` seconds (RegionBusy after that).

        ``should_cancel`` is polled while waiting; when true (or when it raises), the
        wait ends with its exception, or with ``Cancelled``.
        """
        from glancesync.errors import Cancelled

        fd, created = _open(self.path)
        deadline = clock() + wait
        try:
            while not _try_lock(fd):
                self.waited = True
                if should_cancel is not None and should_cancel():
                    raise Cancelled()
                if clock() >= deadline:
                    raise RegionBusy(BUSY)
                time.sleep(POLL)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        # a file made just now was never given back: no run came before this one
        self.freed_at = 0.0 if created else os.fstat(fd).st_mtime

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # another user's file: not ours to touch
                os.utime(self.path)
            os.close(self._fd)  # closing the descriptor drops its flock
            self._fd = None


def _open(path: str) -> tuple[int, bool]:
    """The lock file's descriptor (flock needs no write) and whether this call made it."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644), True
    except FileExistsError:
        return os.open(path, os.O_RDONLY), False


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
