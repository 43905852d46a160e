"""Authorization (issue 22 item 2): oslo.policy's two rules, scope-aware, on the API;
the policy file override, a broken file at start, the generated sample; and the one
oslo.config object that [keystone_authtoken] is read from."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from app.oslo_config import AUTHTOKEN, build_conf
from app.settings import OpenStackSettings, SettingsError
from glancesync.credentials import Connection
from tests.api.fakes import (
    ADMIN,
    DOMAIN_ADMIN,
    MASTER_READER,
    MEMBER,
    NO_ROLE,
    OTHER_ADMIN,
    SYSTEM_ADMIN,
    SYSTEM_READER,
)
from tests.support.service_app import make_app

REPO = Path(__file__).resolve().parents[2]
TASKS = "/v1/regions/Burgos/tasks"


def get(client, token: str) -> int:
    return client.get(TASKS, headers={"X-Auth-Token": token}).status_code


def post(client, token: str) -> int:
    return client.post(TASKS, headers={"X-Auth-Token": token}).status_code


def test_an_admin_of_another_project_may_neither_view_nor_sync(client):
    assert post(client, OTHER_ADMIN) == 403
    assert get(client, OTHER_ADMIN) == 403


def test_a_domain_admin_is_refused(client):
    assert post(client, DOMAIN_ADMIN) == 403
    assert get(client, DOMAIN_ADMIN) == 403


def test_a_system_reader_may_view_only(client):
    assert get(client, SYSTEM_READER) == 200
    response = client.post(TASKS, headers={"X-Auth-Token": SYSTEM_READER})
    assert response.status_code == 403
    assert "glancesync:sync" in response.get_json()["error"]["description"]


def test_readers_and_members_of_the_masters_project_may_now_view(client):
    assert get(client, MASTER_READER) == 200
    assert get(client, MEMBER) == 200
    assert post(client, MEMBER) == 403
    assert get(client, NO_ROLE) == 403


def test_a_system_admin_may_sync(client):
    assert post(client, SYSTEM_ADMIN) in (200, 202)


def test_unknown_routes_and_methods_come_before_the_token(client):
    assert client.get("/v1/nowhere", headers={"X-Auth-Token": OTHER_ADMIN}).status_code == 404
    assert client.put(TASKS, headers={"X-Auth-Token": OTHER_ADMIN}).status_code == 405


def write_cfg(app_factory_files: dict[str, str], extra: str, tmp_path: Path) -> dict[str, str]:
    source = Path(app_factory_files["GLANCESYNC_SETTINGS_FILE"]).read_text()
    settings = tmp_path / "fiware-glancesync.cfg"
    settings.write_text(source + extra)
    return {**app_factory_files, "GLANCESYNC_SETTINGS_FILE": str(settings)}


def test_the_policy_file_overrides_the_defaults(
    app_factory, database_url, server_files, core_files, tmp_path
):
    policy = tmp_path / "policy.yaml"
    policy.write_text('"glancesync:view": "role:admin and project_id:%(project_id)s"\n')
    environ = write_cfg(server_files, f"\n[oslo_policy]\npolicy_file = {policy}\n", tmp_path)
    app = make_app(database_url, environ, core_files, RECOVER_ON_START=False)
    try:
        client = app.test_client()
        assert get(client, MEMBER) == 403 and get(client, ADMIN) == 200
    finally:
        app.extensions["glancesync.tasks"].shutdown(wait=True)


def test_a_policy_file_that_does_not_parse_stops_the_service(server_files, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text('"glancesync:view": [unclosed\n')
    environ = write_cfg(server_files, f"\n[oslo_policy]\npolicy_file = {policy}\n", tmp_path)
    with pytest.raises(SettingsError) as caught:
        create_app({"CONFIGURE_LOGGING": False}, environ)
    message = str(caught.value)
    assert message.startswith("ERROR: [oslo_policy] policy_file") and "\n" not in message


def test_a_missing_policy_file_stops_the_service(server_files, tmp_path):
    missing = tmp_path / "nowhere.yaml"
    environ = write_cfg(server_files, f"\n[oslo_policy]\npolicy_file = {missing}\n", tmp_path)
    with pytest.raises(SettingsError, match="does not exist"):
        create_app({"CONFIGURE_LOGGING": False}, environ)


def test_the_sample_policy_in_docs_is_the_generators_output(tmp_path):
    generator = shutil.which("oslopolicy-sample-generator", path=str(Path(sys.executable).parent))
    assert generator, "oslo.policy's sample generator is installed with the service"
    out = tmp_path / "policy.yaml"
    subprocess.run(
        [generator, "--namespace", "glancesync", "--output-file", str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_text() == (REPO / "docs" / "policy.yaml").read_text(), (
        "regenerate docs/policy.yaml with oslopolicy-sample-generator --namespace glancesync"
    )


def test_keystone_authtoken_is_passed_through_over_the_openstack_defaults(tmp_path):
    settings = OpenStackSettings(
        Connection(
            keystone_url="https://ks.example/v3",
            user="svc",
            password="pw",
            tenant="service",
            cacert="/etc/ssl/ca.pem",
            interface="internal",
        )
    )
    cfg_file = tmp_path / "fiware-glancesync.cfg"
    cfg_file.write_text(
        "[openstack]\nKEYSTONE_URL = x\n\n[keystone_authtoken]\n"
        "memcached_servers = 127.0.0.1:11211\nmemcache_security_strategy = ENCRYPT\n"
        "memcache_secret_key = k\ntoken_cache_time = 60\n"
    )
    conf = build_conf(str(cfg_file), settings)
    section = conf[AUTHTOKEN]
    assert section.memcached_servers == ["127.0.0.1:11211"]
    assert section.memcache_security_strategy == "ENCRYPT"
    assert section.token_cache_time == 60
    assert (section.cafile, section.interface) == ("/etc/ssl/ca.pem", "internal")
    assert (section.auth_type, section.username, section.auth_url) == (
        "password",
        "svc",
        "https://ks.example/v3",
    )
    assert build_conf(None, settings)[AUTHTOKEN].token_cache_time == 300
