"""A real ``glancesync`` process fed by a slow master image (issue 11: interrupts, overlaps).

The master image's bytes reach the process through a FIFO named like the image in
``images_dir`` (the CLI reads ``<images_dir>/<id>`` before the master API, reference 6.4),
written by a thread at a fixed pace: the test knows how far the upload is and can send a signal, or
start a second run, in the middle of it, without any hook in the product.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
PIECE = 256 * 1024


class SlowFeed:
    """Writes ``data`` into the FIFO ``path`` in pieces, ``pause`` seconds apart."""

    def __init__(self, path: Path, data: bytes, pause: float = 0.05):
        self.path, self.data, self.pause = path, data, pause
        self.sent = 0
        self.finished = False
        self.broken = False
        os.mkfifo(path)
        self._stop = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self.hold_at: int | None = None
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def _write(self) -> None:
        try:
            with open(self.path, "wb", buffering=0) as fifo:  # waits for the reader
                for offset in range(0, len(self.data), PIECE):
                    if self.hold_at is not None and offset >= self.hold_at:
                        self._go.clear()
                        self.hold_at = None
                    self._go.wait()
                    if self._stop.is_set():
                        return
                    fifo.write(self.data[offset : offset + PIECE])
                    self.sent = offset + len(self.data[offset : offset + PIECE])
                    time.sleep(self.pause)
                self.finished = True
        except BrokenPipeError:
            self.broken = True  # the reader went away mid-image

    def hold(self, nbytes: int) -> None:
        """Stop feeding once ``nbytes`` were sent (the upload then waits, mid-image)."""
        self.hold_at = nbytes

    def resume(self) -> None:
        self._go.set()

    def wait_for(self, nbytes: int, timeout: float = 60) -> None:
        wait_until(
            lambda: self.sent >= nbytes,
            timeout,
            step=0.02,
            what=lambda: f"{nbytes} bytes read (only {self.sent} were)",
        )

    def close(self) -> None:
        """End the writer, unblocking an ``open`` that no reader ever answered."""
        self._stop.set()
        self._go.set()
        if self._thread.is_alive():
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass
        self._thread.join(5)


def start_cli(config: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
    env.update(GLANCESYNC_CONFIG=str(config), PYTHONPATH=str(REPO))
    exe = shutil.which("glancesync", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "glancesync"]
    return subprocess.Popen(
        [*command, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd or config.parent,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"glancesync did not end:\n{out}\n{err}") from None
    return process.returncode, out, err


def interrupt(process: subprocess.Popen[str], signum: int) -> float:
    """Send ``signum``; returns the seconds the process took to end."""
    start = time.monotonic()
    process.send_signal(signum)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        raise AssertionError("glancesync ignored the signal for 60 s") from None
    return time.monotonic() - start
