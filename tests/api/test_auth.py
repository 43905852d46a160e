"""Token validation: the bounded cache, one Keystone call per token, and the real
Keystone client's failure mapping (BEHAVIOUR.md 10.2)."""

from __future__ import annotations

import threading
import time

import pytest

from app.auth import KeystoneUnavailable, KeystoneValidator, TokenCache, TokenInfo
from app.settings import OpenStackSettings
from glancesync.credentials import Connection
from tests.api.fakes import ADMIN, ADMIN2, EXPIRED, KEYSTONE_DOWN, FakeValidator
from tests.support.network import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class CountingValidator:
    def __init__(self, lifetime: float, clock: Clock, delay: float = 0.0) -> None:
        self.calls: list[str] = []
        self.lifetime, self.clock, self.delay = lifetime, clock, delay
        self._lock = threading.Lock()

    def validate(self, token: str) -> TokenInfo | None:
        with self._lock:
            self.calls.append(token)
        time.sleep(self.delay)
        if token.startswith("bad"):
            return None
        return TokenInfo("u", frozenset({"admin"}), self.clock.now + self.lifetime)


def test_one_validation_per_token_until_expiry():
    clock = Clock()
    inner = CountingValidator(60, clock)
    cache = TokenCache(inner, timer=clock)
    for _ in range(5):
        assert cache.validate("t1").user == "u"
    assert inner.calls == ["t1"]
    clock.now += 59
    cache.validate("t1")
    assert inner.calls == ["t1"]
    clock.now += 2  # past the expiry: validated again
    cache.validate("t1")
    assert inner.calls == ["t1", "t1"]


def test_rejected_tokens_are_not_cached():
    clock = Clock()
    inner = CountingValidator(60, clock)
    cache = TokenCache(inner, timer=clock)
    assert cache.validate("bad") is None
    assert cache.validate("bad") is None
    assert inner.calls == ["bad", "bad"]


def test_an_already_expired_answer_is_not_cached():
    clock = Clock()
    inner = CountingValidator(-1, clock)
    cache = TokenCache(inner, timer=clock)
    assert cache.validate("t") is None
    assert cache.validate("t") is None
    assert len(inner.calls) == 2


def test_cache_is_bounded_least_recently_used_evicted():
    clock = Clock()
    inner = CountingValidator(600, clock)
    cache = TokenCache(inner, maxsize=2, timer=clock)
    cache.validate("a")
    cache.validate("b")
    cache.validate("a")  # b is now the least recently used
    cache.validate("c")
    cache.validate("a")
    assert inner.calls == ["a", "b", "c"]
    cache.validate("b")
    assert inner.calls == ["a", "b", "c", "b"]


def test_concurrent_first_requests_validate_once():
    clock = Clock()
    inner = CountingValidator(600, clock, delay=0.2)
    cache = TokenCache(inner, timer=clock)
    threads = [threading.Thread(target=cache.validate, args=("same",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert inner.calls == ["same"]


def test_keystone_failures_are_not_cached():
    cache = TokenCache(FakeValidator())
    for _ in range(2):
        with pytest.raises(KeystoneUnavailable):
            cache.validate(KEYSTONE_DOWN)
    assert cache.validator.calls[KEYSTONE_DOWN] == 2


def test_the_app_validates_each_token_once(app):
    client = app.test_client()
    validator = app.config["TOKEN_VALIDATOR"]
    for token in (ADMIN, ADMIN, ADMIN2, ADMIN, ADMIN2, EXPIRED, EXPIRED):
        client.get("/v1/regions/Burgos/tasks", headers={"X-Auth-Token": token})
    assert validator.calls == {ADMIN: 1, ADMIN2: 1, EXPIRED: 2}


def test_keystone_validator_unreachable_keystone_is_unavailable():
    settings = OpenStackSettings(
        Connection(
            keystone_url=f"http://127.0.0.1:{free_port()}/v3",
            user="svc",
            password="pw-secret",
            tenant="service",
        )
    )
    validator = KeystoneValidator(settings, timeout=2)
    with pytest.raises(KeystoneUnavailable) as caught:
        validator.validate("some-token")
    assert "pw-secret" not in str(caught.value) and "some-token" not in str(caught.value)


def test_settings_repr_hides_the_password():
    settings = OpenStackSettings(Connection("http://k/v3", "svc", "pw-secret", tenant="p"))
    assert "pw-secret" not in repr(settings)
