"""``manage.py listen`` as a process (issue 17): a broker that cannot be reached is
reported and retried, and SIGTERM still ends the process cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.network import free_port
from tests.support.service_files import SERVER_CFG, SERVICE_PASSWORD
from tests.support.waiting import wait_until

UNREACHABLE = "The message broker of [notifications] TRANSPORT_URL is unreachable"


def test_sigterm_ends_a_listener_waiting_for_its_broker(repo_root, tmp_path, core_files):
    settings = tmp_path / "fiware-glancesync.cfg"
    settings.write_text(
        SERVER_CFG.format(password=SERVICE_PASSWORD)
        + f"\n[notifications]\nTRANSPORT_URL = rabbit://guest:guest@127.0.0.1:{free_port()}/\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GLANCESYNC")},
        "GLANCESYNC_SETTINGS_FILE": str(settings),
        "GLANCESYNC_LOGGING_SETTINGS_FILE": str(repo_root / "fiware-glancesync-logging.cfg"),
        "GLANCESYNC_CONFIG": core_files["config"],
        "GLANCESYNC_USE_MOCK": core_files["backups"],
        "GLANCESYNCAPP_DATABASE_URL": f"sqlite:///{tmp_path}/l.db",
    }
    log = Path(tmp_path / "glancesync-api.log")
    proc = subprocess.Popen(
        [sys.executable, str(repo_root / "manage.py"), "listen"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def logged_unreachable() -> bool:
            assert proc.poll() is None, proc.stdout.read()
            return log.exists() and UNREACHABLE in log.read_text()

        wait_until(logged_unreachable, 30, step=0.1, what=UNREACHABLE, ignore=())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        proc.kill()
    text = log.read_text()
    assert "Listener stopping" in text and "Traceback" not in text
    assert SERVICE_PASSWORD not in text
