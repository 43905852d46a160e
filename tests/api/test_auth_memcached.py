"""Two service processes share auth_token's cache in memcached (issue 22 item 1): a
token validated by one is not validated again by the other within token_cache_time."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.fakekeystone import GOOD_TOKEN, SERVICE_PASSWORD, fake_keystone
from tests.support.network import free_port

REPO = Path(__file__).resolve().parents[2]
VALIDATE = """
import sys
from app.auth import KeystoneValidator
from app.oslo_config import build_conf
from app.settings import OpenStackSettings
from glancesync.credentials import Connection

url, cfg_file, token = sys.argv[1:4]
settings = OpenStackSettings(
    Connection(keystone_url=url, user="glancesync", password={password!r}, tenant="service")
)
info = KeystoneValidator(settings, build_conf(cfg_file, settings)).validate(token)
print(info.user if info else "invalid")
"""


@pytest.fixture
def memcached() -> Iterator[str]:
    """A memcached of this test on a free loopback port (.ci/run installs the binary)."""
    binary = shutil.which("memcached")
    assert binary, "memcached is needed (Debian's package; .ci/run installs it)"
    port = free_port()
    user = ["-u", "nobody"] if os.getuid() == 0 else []  # memcached refuses root
    proc = subprocess.Popen([binary, "-l", "127.0.0.1", "-p", str(port), *user])
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_two_processes_share_the_token_cache(memcached, tmp_path):
    cfg_file = tmp_path / "fiware-glancesync.cfg"
    cfg_file.write_text(
        "[keystone_authtoken]\n"
        f"memcached_servers = {memcached}\n"
        "memcache_security_strategy = ENCRYPT\n"
        "memcache_secret_key = test-secret-key\n"
        "token_cache_time = 300\n"
    )
    script = VALIDATE.format(password=SERVICE_PASSWORD)
    with fake_keystone() as keystone:
        for _ in range(2):  # two service processes, one after the other
            done = subprocess.run(
                [sys.executable, "-c", script, f"{keystone.url}/v3", str(cfg_file), GOOD_TOKEN],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.stdout.strip() == "alice", done.stderr[-2000:]
        assert keystone.validations[GOOD_TOKEN] == 1
