"""Which process a run id names, and whether it still runs: the process *scope*.

``host:pid`` alone does not name a process: two containers with host networking, or two
cloned VMs, have the same host name and reuse the same pids in their own pid namespaces.
A pid is therefore looked at only by a process of the same boot and pid namespace (the
scope, ``<boot id>/<pid namespace inode>``). The service's lease holders (app/workers.py)
and the CLI's run ids (glancesync.leftovers) both use it, so it lives in the core.
"""

from __future__ import annotations

import os


def process_scope() -> str:
    """``<boot id>/<pid namespace inode>``; empty where Linux's /proc is missing, and
    then no pid is ever trusted (a doubt means "alive")."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as stream:
            boot = stream.read().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def same_scope(scope: str) -> bool:
    """True when ``scope`` is this process's own (and known): its pids are ours to check."""
    return bool(scope) and scope == process_scope()


def pid_alive(pid: int) -> bool:
    """A zombie is dead: a killed process stays one until init reaps it (seconds, in some
    containers), and its runs must not be taken for running."""
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
