"""Which Keystone failure is whose fault (issue 12 item 4): the service's own login failing
(wrong URL, 404, wrong password) is a 503 naming the problem; a 400 or 404 on the
caller's token is a 401."""

from __future__ import annotations

import pytest

from app.auth import KeystoneUnavailable, KeystoneValidator
from app.settings import OpenStackSettings
from glancesync.credentials import Connection
from tests.api.fakekeystone import (
    GOOD_TOKEN,
    MALFORMED_TOKEN,
    SERVICE_PASSWORD,
    fake_keystone,
)


@pytest.fixture
def keystone():
    with fake_keystone() as url:
        yield url


def validator(url: str, password: str = SERVICE_PASSWORD) -> KeystoneValidator:
    settings = OpenStackSettings(
        Connection(keystone_url=url, user="glancesync", password=password, tenant="service")
    )
    return KeystoneValidator(settings, timeout=5)


def test_a_good_token_is_valid(keystone):
    info = validator(f"{keystone}/v3").validate(GOOD_TOKEN)
    assert info is not None and info.user == "alice" and "admin" in info.roles


@pytest.mark.parametrize("token", ["unknown-token", MALFORMED_TOKEN])
def test_a_token_keystone_answers_404_or_400_for_is_invalid(keystone, token):
    assert validator(f"{keystone}/v3").validate(token) is None


def test_a_wrong_keystone_url_is_unavailable_and_says_so(keystone):
    with pytest.raises(KeystoneUnavailable) as caught:
        validator(f"{keystone}/identity/v3").validate(GOOD_TOKEN)
    message = str(caught.value)
    assert "service's own login" in message and "404" in message and "KEYSTONE_URL" in message


def test_a_wrong_service_password_is_unavailable_and_says_so(keystone):
    with pytest.raises(KeystoneUnavailable) as caught:
        validator(f"{keystone}/v3", password="wrong-pass").validate(GOOD_TOKEN)
    assert "rejected the service's own credentials" in str(caught.value)
    assert "wrong-pass" not in str(caught.value)


def test_the_app_answers_503_not_401_when_its_own_login_fails(app_factory, keystone):
    app = app_factory(TOKEN_VALIDATOR=validator(f"{keystone}/identity/v3"))
    response = app.test_client().get("/v1/regions/Burgos/tasks", headers={"X-Auth-Token": "t"})
    assert response.status_code == 503
    assert "KEYSTONE_URL" in response.get_json()["error"]["description"]
    good = app_factory(TOKEN_VALIDATOR=validator(f"{keystone}/v3"))
    bad_token = {"X-Auth-Token": "unknown-token"}
    assert good.test_client().get("/v1/regions/Burgos/tasks", headers=bad_token).status_code == 401
