"""The testbed's own RabbitMQ virtual host, where the master Glance sends its notifications.

The broker is the machine's RabbitMQ on 127.0.0.1:5672 (guest/guest); each testbed gets a
vhost named after its workdir, so its listener tests never see another testbed's events.
``rabbitmqctl`` does the administration: it ships with the broker and needs no plugin.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from testbed.errors import TestbedError

BROKER = "127.0.0.1:5672"
USER, PASSWORD = "guest", "guest"
NOTIFICATION_QUEUE = "notifications.info"  # topic ``notifications``, priority ``info``


def vhost_for(workdir: Path) -> str:
    return "glancesync-tb-" + hashlib.sha256(str(workdir).encode()).hexdigest()[:10]


def transport_url(vhost: str) -> str:
    return f"rabbit://{USER}:{PASSWORD}@{BROKER}/{vhost}"


def rabbitmqctl(*args: str, check: bool = True) -> str:
    try:
        proc = subprocess.run(
            ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TestbedError(f"rabbitmqctl {args[0]} failed: {exc}") from None
    if check and proc.returncode != 0:
        raise TestbedError(f"rabbitmqctl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def create_vhost(vhost: str) -> None:
    """A fresh, empty vhost where guest may do everything (an old one is dropped first)."""
    delete_vhost(vhost)
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, USER, ".*", ".*", ".*")


def delete_vhost(vhost: str) -> None:
    rabbitmqctl("delete_vhost", vhost, check=False)


def purge(vhost: str, queue: str = NOTIFICATION_QUEUE) -> None:
    """Drop the queued notifications (lost events); a queue not declared yet is empty."""
    if queue in queue_lengths(vhost):
        rabbitmqctl("purge_queue", "-p", vhost, queue)


def queue_lengths(vhost: str) -> dict[str, int]:
    out = rabbitmqctl("list_queues", "-p", vhost, "name", "messages")
    lengths = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            lengths[parts[0]] = int(parts[1])
    return lengths
