"""Who holds a task's lease: the identity of a server process (D23).

``host:pid`` alone is not unique: two containers with host networking, or two cloned VMs,
have the same host name and may reuse the same pids in their own pid namespaces. A lease
holder is therefore named ``host:pid:nonce`` (a random nonce per runner start), and its
pid is looked at only by a process of the same boot and pid namespace (the *scope*).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Worker:
    """One lease holder; ``name`` goes into ``task.worker``, ``scope`` into
    ``task.worker_scope``."""

    host: str
    pid: int
    nonce: str
    scope: str

    @property
    def name(self) -> str:
        return f"{self.host}:{self.pid}:{self.nonce}"


def new_worker() -> Worker:
    """A fresh identity for the calling process (call it after any fork)."""
    return Worker(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12], process_scope())


def process_scope() -> str:
    """``<boot id>/<pid namespace inode>``; empty where Linux's /proc is missing, and
    then no pid is ever trusted (the heartbeat alone decides)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as stream:
            boot = stream.read().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def worker_pid(name: str) -> int | None:
    """The pid of a worker name ``host:pid:nonce``; None for anything else (the
    ``host:pid`` rows from before 0003 have no scope, so their pid is never used)."""
    parts = name.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return int(parts[1])
    return None


def pid_alive(pid: int) -> bool:
    """A zombie is dead: a killed worker stays one until init reaps it (seconds, in some
    containers), and a restarted service must not take its tasks for running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


def is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stream:
            state = stream.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False  # no /proc (not Linux): trust the signal check
    return state in ("Z", "X")
