"""Who holds a task's lease: the identity of a server process (D23).

``host:pid`` alone is not unique: two containers with host networking, or two cloned VMs,
have the same host name and may reuse the same pids in their own pid namespaces. A lease
holder is therefore named ``host:pid:nonce`` (a random nonce per runner start), and its
pid is looked at only by a process of the same boot and pid namespace (the *scope*,
glancesync.processes: the CLI's run ids use it too).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from glancesync.processes import is_zombie, pid_alive, process_scope

__all__ = ["Worker", "is_zombie", "new_worker", "pid_alive", "process_scope", "worker_pid"]


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


def worker_pid(name: str) -> int | None:
    """The pid of a worker name ``host:pid:nonce``; None for anything else (the
    ``host:pid`` rows from before 0003 have no scope, so their pid is never used)."""
    parts = name.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return int(parts[1])
    return None
