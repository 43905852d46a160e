"""keystonemiddleware's auth_token as the service calls it, against a Keystone on loopback:
its answers mapped to 10.1's (401 for a bad token, 503 naming Keystone without URLs when
the service's own login fails), its cache (token_cache_time) and revocation."""

from __future__ import annotations

import pytest

from app.auth import KeystoneUnavailable, KeystoneValidator
from app.oslo_config import AUTHTOKEN, authtoken_conf
from app.settings import OpenStackSettings
from glancesync.credentials import Connection
from tests.api.fakekeystone import (
    GOOD_TOKEN,
    SERVICE_PASSWORD,
    SERVICE_PROJECT,
    fake_keystone,
)
from tests.support.waiting import wait_until


@pytest.fixture
def keystone():
    with fake_keystone() as server:
        yield server


def validator(url: str, password: str = SERVICE_PASSWORD, cache_time: int = 300):
    settings = OpenStackSettings(
        Connection(keystone_url=url, user="glancesync", password=password, tenant="service")
    )
    conf = authtoken_conf(settings)
    conf.set_override("token_cache_time", cache_time, AUTHTOKEN)
    conf.set_override("http_connect_timeout", 5, AUTHTOKEN)
    return KeystoneValidator(settings, conf)


def test_a_good_token_is_valid_with_its_scope(keystone):
    info = validator(f"{keystone.url}/v3").validate(GOOD_TOKEN)
    assert info is not None and info.user == "alice" and "admin" in info.roles
    assert info.project_id == SERVICE_PROJECT and info.system_scope is None


def test_a_token_keystone_answers_404_for_is_invalid(keystone):
    assert validator(f"{keystone.url}/v3").validate("unknown-token") is None


def test_the_requests_name_glancesync_and_its_version(keystone):
    import glancesync

    keystone.user_agents.clear()
    assert validator(f"{keystone.url}/v3").validate(GOOD_TOKEN) is not None
    # auth_token's own requests (keystoneauth's session) name the service first
    ours = [agent for agent in keystone.user_agents if "keystonemiddleware" in agent]
    assert ours and all(
        agent.startswith(f"glancesync/{glancesync.__version__} ") for agent in ours
    ), keystone.user_agents


def test_the_master_project_is_the_services_own(keystone):
    assert validator(f"{keystone.url}/v3").master_project() == SERVICE_PROJECT


def test_a_wrong_service_password_is_unavailable_without_urls(keystone):
    with pytest.raises(KeystoneUnavailable) as caught:
        validator(f"{keystone.url}/v3", password="wrong-pass").validate(GOOD_TOKEN)
    message = str(caught.value)
    assert "Keystone" in message
    assert "wrong-pass" not in message and "127.0.0.1" not in message and "http" not in message


def test_an_unreachable_keystone_is_unavailable(keystone):
    url = f"{keystone.url}/v3"
    keystone.shutdown()
    keystone.server_close()
    with pytest.raises(KeystoneUnavailable) as caught:
        validator(url).validate(GOOD_TOKEN)
    assert "127.0.0.1" not in str(caught.value)


def test_one_validation_per_token_within_token_cache_time(keystone):
    checker = validator(f"{keystone.url}/v3", cache_time=300)
    for _ in range(4):
        assert checker.validate(GOOD_TOKEN) is not None
    assert keystone.validations[GOOD_TOKEN] == 1


def test_a_revoked_token_is_refused_within_token_cache_time(keystone):
    checker = validator(f"{keystone.url}/v3", cache_time=2)
    assert checker.validate(GOOD_TOKEN) is not None
    keystone.tokens.pop(GOOD_TOKEN)  # revoked in Keystone
    assert checker.validate(GOOD_TOKEN) is not None  # still cached
    wait_until(lambda: checker.validate(GOOD_TOKEN) is None, 2 + 3, step=0.1)


def test_the_app_answers_503_not_401_when_its_own_login_fails(app_factory, keystone):
    app = app_factory(TOKEN_VALIDATOR=validator(f"{keystone.url}/v3", password="nope"))
    response = app.test_client().get("/v1/regions/Burgos/tasks", headers={"X-Auth-Token": "t"})
    assert response.status_code == 503
    description = response.get_json()["error"]["description"]
    assert "Keystone" in description and "127.0.0.1" not in description
    good = app_factory(TOKEN_VALIDATOR=validator(f"{keystone.url}/v3"))
    bad_token = {"X-Auth-Token": "unknown-token"}
    assert good.test_client().get("/v1/regions/Burgos/tasks", headers=bad_token).status_code == 401
    ok = {"X-Auth-Token": GOOD_TOKEN}
    assert good.test_client().get("/v1/regions/Burgos/tasks", headers=ok).status_code == 200
