"""``manage.py listen`` shares the bus (issue 24 item 3): its own queue (pool) on Glance's
exchange leaves every event on the shared ``notifications.info`` queue to telemetry; the
cfg's ``[oslo_messaging_rabbit]`` reaches oslo.messaging."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import pytest

from app.listener import Endpoint, oslo_listener
from app.oslo_config import build_conf
from app.settings import NotificationSettings, Settings, load_settings
from app.settings.reader import Reader
from app.settings.sections import read_notifications
from tests.support.brokers import rabbit_vhost, rabbitmqctl, vhost_of
from tests.support.service_files import SERVER_CFG, SERVICE_PASSWORD
from tests.support.waiting import wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # eventlet's deprecation, imported but not used
    import oslo_messaging

EVENTS = 12


def service_settings(folder: Path, extra: str = "") -> Settings:
    """The service's settings from a cfg of the API tests plus ``extra``."""
    path = folder / "fiware-glancesync.cfg"
    path.write_text(SERVER_CFG.format(password=SERVICE_PASSWORD) + extra)
    return load_settings(
        {"GLANCESYNC_SETTINGS_FILE": str(path), "GLANCESYNC_LOGGING_SETTINGS_FILE": ""}
    )


def oslo_conf(settings: Settings):
    return build_conf(settings.settings_file, settings.openstack)


class Counter:
    """An endpoint that counts the ``image.update`` events it receives."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        with self.lock:
            self.ids.append(payload["id"])

    def wait_for(self, count: int, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.ids) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        # A duplicate delivery has no event to wait for: give it half a second to show.
        time.sleep(0.5)
        return sorted(self.ids)


def bound_queues(amqp_url: str, exchange: str = "glance") -> set[str]:
    """The queues bound to ``exchange`` in the vhost of ``amqp_url`` (as RabbitMQ says)."""
    table = rabbitmqctl(
        "list_bindings",
        "--quiet",
        "--no-table-headers",
        "-p",
        vhost_of(amqp_url),
        "source_name",
        "destination_name",
    )
    rows = (line.split("\t") for line in table.splitlines())
    return {row[1] for row in rows if len(row) == 2 and row[0] == exchange}


def glance_notifier(url: str, conf):
    """Publishes as Glance does: exchange ``glance``, topic ``notifications``."""
    oslo_messaging.get_notification_transport(conf, url=url)  # registers control_exchange
    conf.set_override("control_exchange", "glance")
    transport = oslo_messaging.get_notification_transport(conf, url=url)
    return oslo_messaging.Notifier(
        transport, "image.localhost", driver="messagingv2", topics=["notifications"]
    )


def telemetry(url: str, counter: Counter, conf):
    """A consumer of the shared queue, as Ceilometer's: no pool, Glance's exchange."""
    transport = oslo_messaging.get_notification_transport(conf, url=url)
    target = oslo_messaging.Target(topic="notifications", exchange="glance")
    return oslo_messaging.get_notification_listener(
        transport, [target], [counter], executor="threading"
    )


def publish(notifier, first: int) -> list[str]:
    ids = [f"image-{number:03d}" for number in range(first, first + EVENTS)]
    for image_id in ids:
        notifier.info({}, "image.update", {"id": image_id, "name": image_id})
    return ids


def test_the_shared_queue_keeps_every_event_while_listen_runs(tmp_path):
    settings = service_settings(tmp_path)
    with rabbit_vhost() as amqp_url:
        url = "rabbit" + amqp_url.removeprefix("amqp")
        shared, ours = Counter(), Counter()
        consumer = telemetry(url, shared, oslo_conf(settings))
        consumer.start()
        listen = None
        try:
            notifier = glance_notifier(url, oslo_conf(settings))
            alone = publish(notifier, 0)
            assert shared.wait_for(EVENTS) == alone
            endpoint = Endpoint(lambda kind, body: ours.info(None, None, kind, body, None))
            listening = NotificationSettings(transport_url=url)  # POOL and EXCHANGE defaults
            listen = oslo_listener(listening, endpoint, oslo_conf(settings))
            before = bound_queues(amqp_url)
            listen.start()
            wait_until(lambda: bound_queues(amqp_url) - before, 60, step=0.5)
            beside = publish(notifier, EVENTS)
            assert shared.wait_for(2 * EVENTS) == sorted(alone + beside)
            assert ours.wait_for(EVENTS) == beside
        finally:
            for running in (listen, consumer):
                if running is not None:
                    running.stop()
                    running.wait()


def test_oslo_messaging_rabbit_options_reach_oslo_messaging(tmp_path: Path):
    settings = service_settings(
        tmp_path,
        "\n[notifications]\nTRANSPORT_URL = rabbit://guest:guest@127.0.0.1:5672/\n\n"
        "[oslo_messaging_rabbit]\n"
        "ssl = true\n"
        "ssl_ca_file = /etc/glancesync/rabbit-ca.pem\n"
        "rabbit_quorum_queue = true\n"
        "heartbeat_timeout_threshold = 30\n",
    )
    conf = oslo_conf(settings)
    listener = oslo_listener(settings.notifications, Endpoint(lambda *_: None), conf)
    rabbit = listener.transport.conf.oslo_messaging_rabbit  # what its rabbit driver reads
    assert rabbit.ssl and rabbit.ssl_ca_file == "/etc/glancesync/rabbit-ca.pem"
    assert rabbit.rabbit_quorum_queue and rabbit.heartbeat_timeout_threshold == 30


@pytest.mark.parametrize(
    ("text", "pool", "exchange"),
    [
        ("", "glancesync", "glance"),
        ("POOL = glancesync-eu\nEXCHANGE = images\n", "glancesync-eu", "images"),
    ],
)
def test_pool_and_exchange_settings(tmp_path, text, pool, exchange):
    path = tmp_path / "s.cfg"
    path.write_text("[notifications]\n" + text)
    read = read_notifications(Reader(str(path)))
    assert (read.pool, read.exchange) == (pool, exchange)
