"""glancesync-api.log written by several server processes at once loses no line when it
rotates (issue 12 item 3): the shipped fiware-glancesync-logging.cfg, 2 MB and 3 backups."""

from __future__ import annotations

import subprocess
import sys

WRITER = """
import logging, logging.config, sys
logging.config.fileConfig(sys.argv[1], disable_existing_loggers=False)
log = logging.getLogger("GlanceSync-API")
for index in range(int(sys.argv[3])):
    log.info("writer %s line %06d %s", sys.argv[2], index, "x" * 120)
"""
WRITERS, LINES = 4, 5000  # about 4 MB in all: two rotations, well within 3 backups


def test_concurrent_writers_lose_no_line_at_rotation(repo_root, tmp_path):
    config = repo_root / "fiware-glancesync-logging.cfg"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(config), str(writer), str(LINES)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
        )
        for writer in range(WRITERS)
    ]
    for process in processes:
        assert process.wait(timeout=120) == 0
    logs = sorted(tmp_path.glob("glancesync-api.log*"))
    assert len(logs) >= 2, "the log never rotated"
    lines = [
        line
        for path in logs
        if not path.name.endswith(".lock")
        for line in path.read_text().splitlines()
    ]
    found = {line.split("writer ", 1)[1][:13] for line in lines if "writer " in line}
    assert len(found) == WRITERS * LINES
