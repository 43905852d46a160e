"""The testbed itself: real Keystone catalogs, a Glance round trip, a server restart."""

from __future__ import annotations

import datetime as dt
import io
import os
import socket
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.integration


def _catalog_regions(sess, service_type: str) -> dict[str, str]:
    access = sess.auth.get_access(sess)
    endpoints = access.service_catalog.get_endpoints(service_type=service_type, interface="public")
    return {ep["region_id"]: ep["url"] for ep in endpoints[service_type]}


def test_keystone_issues_admin_token(testbed, os_session):
    sess = os_session()
    assert sess.get_token()
    assert sess.get_project_id() == testbed.info["keystones"]["keystone-1"]["admin_project_id"]


def test_token_expiration_is_the_configured_one(testbed, os_session):
    sess = os_session()
    access = sess.auth.get_access(sess)
    lifetime = (access.expires - dt.datetime.now(dt.UTC)).total_seconds()
    assert abs(lifetime - testbed.info["token_expiration"]) < 120


def test_catalog_lists_the_three_regions(testbed, os_session):
    images = _catalog_regions(os_session(), "image")
    assert set(images) == {"Spain2", "Trento", "Lannion"}
    for region, url in images.items():
        assert url == testbed.info["regions"][region]["glance_url"]
    identity = _catalog_regions(os_session(), "identity")
    assert identity["Spain2"] == testbed.info["keystones"]["keystone-1"]["url"]


def test_second_keystone_lists_madrid(testbed, os_session):
    images = _catalog_regions(os_session("keystone-2"), "image")
    assert images == {"Madrid": testbed.info["regions"]["Madrid"]["glance_url"]}


def test_demo_user_is_not_admin(os_session):
    from keystoneauth1 import exceptions

    sess = os_session(user="demo")
    assert sess.get_token()
    with pytest.raises(exceptions.Forbidden):
        sess.get("/users", endpoint_filter={"service_type": "identity", "interface": "public"})


def test_image_round_trip_on_trento(os_session):
    from glanceclient import Client

    glance = Client("2", session=os_session(), region_name="Trento")
    data = os.urandom(64 * 1024)
    image = glance.images.create(
        name="testbed-roundtrip", disk_format="raw", container_format="bare"
    )
    try:
        glance.images.upload(image.id, io.BytesIO(data))
        assert glance.images.get(image.id).status == "active"
        assert b"".join(glance.images.data(image.id)) == data
    finally:
        glance.images.delete(image.id)


def test_stopped_glance_refuses_connections_and_starts_again(testbed, os_session):
    from glanceclient import Client

    url = urlsplit(testbed.info["regions"]["Lannion"]["glance_url"])
    testbed.stop_server("glance-Lannion")
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((url.hostname, url.port), timeout=2).close()
    finally:
        testbed.start_server("glance-Lannion")
    assert testbed.info["regions"]["Lannion"]["pid"]
    glance = Client("2", session=os_session(), region_name="Lannion")
    assert isinstance(list(glance.images.list()), list)


def test_frozen_glance_accepts_but_never_answers(testbed):
    import urllib.request

    url = testbed.info["regions"]["Lannion"]["glance_url"] + "/"
    testbed.freeze_server("glance-Lannion")
    try:
        with pytest.raises(TimeoutError):
            urllib.request.urlopen(url, timeout=1.5)
    finally:
        testbed.thaw_server("glance-Lannion")
    with pytest.raises(urllib.error.HTTPError) as exc:  # versions list: 300 Multiple Choices
        urllib.request.urlopen(url, timeout=10)
    assert exc.value.code == 300


def test_only_the_master_glance_announces_its_changes_on_the_testbed_vhost(testbed, os_session):
    """Issue 17: the master sends notifications to the testbed's own vhost; a purge empties it."""
    from glanceclient import Client

    from testbed import broker

    vhost = testbed.info["notifications"]["vhost"]
    broker.purge(vhost)
    for region, keystone in (("Trento", "keystone-1"), ("Spain2", "keystone-1")):
        client = Client("2", session=os_session(keystone), region_name=region)
        image = client.images.create(name="tb-notify", disk_format="raw", container_format="bare")
        if region == "Trento":
            client.images.delete(image["id"])
            assert broker.queue_lengths(vhost).get(broker.NOTIFICATION_QUEUE, 0) == 0
    client.images.delete(image["id"])  # Spain2: image.create then image.delete
    assert broker.queue_lengths(vhost)[broker.NOTIFICATION_QUEUE] == 2
    broker.purge(vhost)
    assert broker.queue_lengths(vhost)[broker.NOTIFICATION_QUEUE] == 0
