"""[celery] ROUTES (issue 15): which queue syncs which region."""

from __future__ import annotations

import pytest

from app.placement import DEFAULT_QUEUE, RoutesError, parse_routes, unknown_names
from app.settings import SettingsError, load_settings

ROUTES = "Trento=east, other:Madrid=west, other:=west"


def test_the_issue_example_routes_regions_and_whole_targets():
    routes = parse_routes(ROUTES)
    assert routes.queue_for("Trento") == "east"
    assert routes.queue_for("other:Madrid") == "west"
    assert routes.queue_for("other:Lisbon") == "west"  # the whole target
    assert routes.queue_for("Lannion") == DEFAULT_QUEUE  # unrouted
    assert routes.queues == {DEFAULT_QUEUE, "east", "west"}


def test_each_entry_is_split_at_its_last_equals_sign_and_names_are_kept():
    routes = parse_routes("Odd=Name=east , master:Lannion = west")
    assert routes.queue_for("Odd=Name") == "east"
    assert routes.queue_for("Lannion") == "west"  # master:<r> is <r>, as in the API
    assert routes.queue_for("odd=name") == DEFAULT_QUEUE  # case kept


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Trento", "entry 'Trento' is not <region>=<queue>"),
        ("Trento=", "entry 'Trento=' is not"),
        ("=east", "entry '=east' is not"),
        ("Trento=east, Trento=west", "region 'Trento' is routed to two queues"),
    ],
)
def test_unreadable_routes_are_named(text, message):
    with pytest.raises(RoutesError, match=message):
        parse_routes(text)


def test_unknown_targets_and_regions_are_listed():
    routes = parse_routes("Trento=east, Trentoo=east, nowhere:=x, other:Paris=w, moon:X=w")
    regions = {"master": ["Trento", "Lannion"], "other": ["other:Madrid"]}
    assert unknown_names(routes, ["master", "other"], regions.__getitem__) == [
        "target 'nowhere'",
        "region 'Trentoo'",
        "region 'other:Paris'",
        "region 'moon:X' (no target 'moon')",
    ]


def write_settings(tmp_path, celery: str) -> dict[str, str]:
    settings = tmp_path / "fiware-glancesync.cfg"
    settings.write_text(
        "[openstack]\nKEYSTONE_URL = http://k:5000/v3\nADM_USER = u\nADM_PASS = p\n"
        f"ADM_TENANT_NAME = t\n\n[celery]\n{celery}"
    )
    logging_cfg = tmp_path / "logging.cfg"
    logging_cfg.write_text("")
    return {
        "GLANCESYNC_SETTINGS_FILE": str(settings),
        "GLANCESYNC_LOGGING_SETTINGS_FILE": str(logging_cfg),
    }


def test_the_broker_comes_from_the_file_or_the_environment(tmp_path):
    environ = write_settings(tmp_path, f"BROKER_URL = amqp://a//\nROUTES = {ROUTES}\n")
    settings = load_settings(environ)
    assert settings.celery.broker_url == "amqp://a//"
    assert settings.celery.routes.queue_for("Trento") == "east"
    environ["GLANCESYNCAPP_BROKER_URL"] = "redis://127.0.0.1:6379/3"
    assert load_settings(environ).celery.broker_url == "redis://127.0.0.1:6379/3"
    assert "amqp" not in repr(load_settings(environ))  # the URL may hold a password


def test_no_broker_means_threads(tmp_path):
    assert load_settings(write_settings(tmp_path, "")).celery.broker_url == ""


def test_a_bad_route_is_a_settings_error_naming_the_file(tmp_path):
    environ = write_settings(tmp_path, "ROUTES = Trento\n")
    with pytest.raises(SettingsError, match=r"Key ROUTES in section \[celery\] of .*cfg"):
        load_settings(environ)
