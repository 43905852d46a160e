"""One sync of a region at a time on this host: a lock file per region (reference 6.9).

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
import stat
import tempfile
import time
from collections.abc import Callable

from glancesync.filenames import file_part

DEFAULT_LOCK_DIR = "/run/lock/glancesync"
POLL = 0.1
BUSY = "another glancesync run is syncing this region"


class RegionBusy(Exception):
    """The region's lock is held by another run for longer than ``lock_wait``."""


def usable_lock_dir(preferred: str) -> str:
    """``preferred`` when it exists or can be made (and written), else a folder in the
    temp folder: a lock that works in the wrong place beats no sync at all.

    A folder is used only when nobody else can swap its files: owned by root or by this
    user, or world-writable with the sticky bit (the shared fallback, where runs of
    different users still exclude each other, and none can remove another's lock)."""
    for folder in (preferred, os.path.join(tempfile.gettempdir(), "glancesync-locks")):
        try:
            os.makedirs(folder, mode=0o1777 if folder != preferred else 0o755, exist_ok=True)
            info = os.stat(folder)
        except OSError:
            continue
        if trusted_folder(info.st_uid, info.st_mode, os.geteuid()) and os.access(
            folder, os.W_OK | os.X_OK
        ):
            return folder
    raise OSError(f"no writable lock folder of this user or root ({preferred} nor the temp folder)")


def trusted_folder(owner: int, mode: int, me: int) -> bool:
    """Owned by root or by ``me``, or world-writable with the sticky bit."""
    if owner in (0, me):
        return True
    return bool(mode & stat.S_ISVTX) and bool(mode & stat.S_IWOTH)


def lock_path(folder: str, key: str, full_region: str) -> str:
    """``<folder>/<region>-<hash of key>.lock``; ``key`` is the backend's ``lock_key``."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return os.path.join(folder, f"{file_part(full_region)}-{digest}.lock")


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
                os.utime(self._fd)  # the file we locked, whatever its path points at now
            os.close(self._fd)  # closing the descriptor drops its flock
            self._fd = None


def _open(path: str) -> tuple[int, bool]:
    """The lock file's descriptor (flock needs no write) and whether this call made it.
    A symlink in its place is refused (ELOOP): nobody may point our lock at their file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644), True
    except FileExistsError:
        return os.open(path, flags), False


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
