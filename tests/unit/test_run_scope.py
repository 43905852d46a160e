"""CLI run ids carry the process scope of the service's worker ids (issue 21 item 6).

``cli:<host>:<pid>`` was judged dead when the pid was absent here; two containers with
one host name (own pid namespaces) then deleted each other's live uploads. A run id now
ends with ``<boot id>/<pid namespace>`` and its pid is looked at only from that scope.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from app import workers
from glancesync import processes
from glancesync.leftovers import cli_run_dead, new_cli_run_id


def dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return int(child.stdout)


def test_a_new_run_id_names_the_process_scope():
    prefix, host, pid, _nonce, scope = new_cli_run_id().split(":", 4)
    assert (prefix, host, pid) == ("cli", socket.gethostname(), str(os.getpid()))
    assert scope == processes.process_scope() and scope


def test_a_run_of_another_pid_namespace_or_boot_is_not_dead_by_its_pid():
    host, pid, scope = socket.gethostname(), dead_pid(), processes.process_scope()
    boot, namespace = scope.split("/")
    assert cli_run_dead(f"cli:{host}:{pid}:abcd:{scope}")  # same scope: the pid tells
    assert not cli_run_dead(f"cli:{host}:{pid}:abcd:{boot}/{int(namespace) + 1}")
    assert not cli_run_dead(f"cli:{host}:{pid}:abcd:another-boot/{namespace}")
    assert not cli_run_dead(f"cli:{host}:{pid}:abcd:")  # no /proc there: never trusted


def test_a_live_process_of_this_scope_and_this_process_are_not_dead():
    host, scope = socket.gethostname(), processes.process_scope()
    assert not cli_run_dead(f"cli:{host}:{os.getppid()}:abcd:{scope}")
    assert not cli_run_dead(f"cli:{host}:{os.getpid()}:abcd:{scope}")
    assert not cli_run_dead(f"cli:another-host:{dead_pid()}:abcd:{scope}")


def test_old_run_ids_are_judged_as_before():
    host = socket.gethostname()
    assert cli_run_dead(f"cli:{host}:{dead_pid()}:abcd")
    assert not cli_run_dead(f"cli:{host}:{os.getppid()}:abcd")
    assert not cli_run_dead("task:1234") and not cli_run_dead("in_progress")


def test_the_service_and_the_core_share_one_scope():
    assert workers.process_scope is processes.process_scope
    assert workers.new_worker().scope == processes.process_scope()
