"""Wrong settings and arguments: one ``ERROR:`` line on stderr, exit 2, no traceback."""

from __future__ import annotations

import pytest

from tests.support.cli_files import BASIC_CONFIG, assert_one_line_error


def test_unknown_target_in_region_name(run):
    run.scenario("basic")
    assert_one_line_error(*run("--show-status", "nosuch:Burgos"), "nosuch")


def test_bad_base64_password(run):
    run.scenario("basic", config=BASIC_CONFIG.replace("ZmFrZXBhc3N3b3JkLG9mY291cnNl", "@@@"))
    assert_one_line_error(*run("--show-status"), str(run.config), "master")


def test_unparsable_condition(run):
    bad = BASIC_CONFIG.replace(
        "image.user_properties.get('type') == 'baseimage'", "len(image.name) > 3"
    )
    run.scenario("basic", config=bad)
    assert_one_line_error(*run("--show-regions"), "[other] metadata_condition", "len")


def test_missing_master_region(run):
    run.scenario("basic", config=BASIC_CONFIG.replace("master_region = Valladolid", ""))
    assert_one_line_error(
        *run("--show-status"),
        "A master region must be set in the configuration or OS_REGION_NAME must be defined",
    )


@pytest.mark.parametrize("item", ["novalue", "=x"])
def test_config_override_without_key_value(run, item):
    run.scenario("basic")
    assert_one_line_error(
        *run("--show-regions", "--config", item), "config options must have the format key=value"
    )


def test_config_override_with_equals_in_value_and_regions_after_double_dash(run):
    run.scenario("basic")
    code, out, _ = run(
        "--show-status",
        "--config",
        'other.metadata_condition=image.name=="img05"',
        "--",
        "other:Madrid",
    )
    assert code == 0
    assert out == "pending_upload,other:Madrid,img05\n\n"


def test_region_after_config_without_double_dash_is_a_usage_error(run):
    run.scenario("basic")
    assert_one_line_error(
        *run("--show-status", "--config", "main.max_children=2", "Burgos"), "key=value"
    )


def test_broken_backup_file_is_a_load_error(run):
    run.scenario("basic")
    (run.store / "backup_Burgos.csv").write_text("Burgos,x,1,active,notanumber,,,True,{}\n")
    assert_one_line_error(*run("--show-status"), "backup_Burgos.csv", "line 1")
