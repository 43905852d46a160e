"""The machine's message brokers for the Celery tests (issue 15).

RabbitMQ (127.0.0.1:5672, guest/guest): each test run gets a vhost of its own, made with
``rabbitmqctl add_vhost`` + ``set_permissions`` and deleted at the end, so runs never
see each other's messages. Redis (127.0.0.1:6379): database ``REDIS_DB``, kept for these
tests and emptied before and after. A broker that does not answer fails the test.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RABBIT = ("127.0.0.1", 5672)
REDIS = ("127.0.0.1", 6379)
REDIS_DB = 11  # the Celery tests' own database number


def answers(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=3):
            return True
    except OSError:
        return False


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@contextlib.contextmanager
def rabbit_vhost() -> Iterator[str]:
    """A fresh vhost; yields its broker URL."""
    if not answers(RABBIT):
        pytest.fail(f"RabbitMQ is not answering on {RABBIT[0]}:{RABBIT[1]} (.ci/run starts it)")
    vhost = f"glancesync-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        rabbitmqctl("delete_vhost", vhost)


def vhost_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def cut_connections(url: str) -> None:
    """Close every client connection of this run's vhost, as a network cut would; the
    vhost itself and the machine's broker keep running."""
    rabbitmqctl("close_all_connections", "-p", vhost_of(url), "glancesync test: cut")


@contextlib.contextmanager
def redis_database() -> Iterator[str]:
    """Database REDIS_DB emptied; yields its broker URL."""
    if not answers(REDIS):
        pytest.fail(f"Redis is not answering on {REDIS[0]}:{REDIS[1]} (.ci/run starts it)")
    import redis

    client = redis.Redis(host=REDIS[0], port=REDIS[1], db=REDIS_DB)
    client.flushdb()
    try:
        yield f"redis://127.0.0.1:6379/{REDIS_DB}"
    finally:
        client.flushdb()
        client.close()


def publish_again(broker_url: str, task_id: str, region: str, queue: str) -> None:
    """The same message once more, as a broker redelivering it would."""
    from celery import Celery

    from app.broker import TASK_NAME

    celery = Celery("glancesync-test", broker=broker_url, set_as_current=False)
    celery.send_task(TASK_NAME, args=[task_id, region], queue=queue)
    celery.close()


class WorkerProcess:
    """``manage.py worker`` in its own session, with its output in ``log``."""

    def __init__(self, environ: dict[str, str], folder: Path, *args: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / f"worker-{uuid.uuid4().hex[:6]}.log"
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(REPO / "manage.py"), "worker", *args],
                cwd=folder,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        """Its output and the service log of its folder (shared by its workers)."""
        logs = [self.log, *sorted(self.log.parent.glob("glancesync-api.log*"))]
        return "\n".join(p.read_text(errors="replace") for p in logs if p.exists())

    def ready(self) -> bool:
        """Celery's worker logs ``<hostname> ready.`` once it consumes its queues."""
        if self.process.poll() is not None:
            raise AssertionError(f"the worker exited:\n{self.text()[-3000:]}")
        return any(
            f"glancesync-{self.pid}@" in line and line.endswith(" ready.")
            for line in self.text().splitlines()
        )

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
