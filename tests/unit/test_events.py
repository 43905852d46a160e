"""Which master notifications trigger a sync, and of which regions (issue 17)."""

from __future__ import annotations

import pytest

from app.events import EventFilter
from glancesync.config import load_config

CONFIG = """
[main]
master_region = Spain2

[master]
credential = user,ZmFrZXBhc3N3b3JkLG9mY291cnNl,http://server:5000/v3,tenant1

[other]
credential = user2,ZmFrZXBhc3N3b3JkLG9mY291cnNl,http://server2:5000/v3,tenant2
metadata_set = nid
"""
MASTER_TENANT = "p-master"


def payload(**changes):
    base = {
        "id": "i1",
        "name": "base",
        "status": "active",
        "owner": MASTER_TENANT,
        "visibility": "public",
        "is_public": True,
        "checksum": "c1",
        "size": 10,
        "properties": {},
        "updated_at": "2026-11-30T00:00:00Z",
    }
    return {**base, **changes}


@pytest.fixture
def events() -> EventFilter:
    targets = load_config(text=CONFIG, environ={}).targets
    regions = [("Trento", targets["master"]), ("other:Madrid", targets["other"])]
    return EventFilter("Spain2", MASTER_TENANT, regions)


@pytest.mark.parametrize(
    ("event_type", "body", "regions"),
    [
        ("image.activate", payload(), ("Trento",)),
        ("image.activate", payload(properties={"nid": "3"}), ("Trento", "other:Madrid")),
        ("image.update", payload(properties={"nid": "3"}), ("Trento", "other:Madrid")),
        # not (yet) active: the upload has not ended
        ("image.create", payload(status="queued"), ()),
        ("image.update", payload(status="saving"), ()),
        # another project's image
        ("image.activate", payload(owner="p-other"), ()),
        # a private image is not synchronisable (no forcesyncs, no condition)
        ("image.update", payload(visibility="private", is_public=False), ()),
        # a download of the image (every sync makes one)
        ("image.send", payload(), ()),
        ("image.member.create", {"image_id": "i1", "member_id": "x"}, ()),
        ("image.update", None, ()),
    ],
)
def test_regions_of_one_event(events, event_type, body, regions):
    assert events.decide(event_type, body).regions == regions


def test_an_image_that_becomes_synchronisable_triggers_a_sync(events):
    assert events.decide("image.activate", payload(visibility="private")).regions == ()
    assert events.decide("image.update", payload()).regions == ("Trento",)


def test_an_update_that_changes_nothing_a_sync_reads_costs_no_sync(events):
    assert events.decide("image.activate", payload()).regions == ("Trento",)
    again = payload(updated_at="2026-11-30T00:00:09Z", tags=["x"])
    assert events.decide("image.update", again).regions == ()
    assert events.decide("image.update", payload(properties={"a": "1"})).regions == ("Trento",)


def test_a_deletion_is_logged_and_syncs_nothing(events):
    decision = events.decide("image.delete", payload(name="gone"))
    assert decision.regions == ()
    assert "gone" in decision.log and "kept" in decision.log
    assert events.decide("image.delete", payload(owner="p-other")).log is None
