"""Test doubles shared by the API tests: a token validator that needs no Keystone."""

from __future__ import annotations

import threading
import time

from app.auth import KeystoneUnavailable, TokenInfo

ADMIN = "admin-token"
ADMIN2 = "second-admin-token"
MEMBER = "member-token"
EXPIRED = "expired-token"
KEYSTONE_DOWN = "keystone-down-token"
REJECTED_CREDENTIALS = "rejected-credentials-token"
TOKENS = (ADMIN, ADMIN2, MEMBER, EXPIRED, KEYSTONE_DOWN, REJECTED_CREDENTIALS)


class FakeValidator:
    """The TokenValidator interface with fixed answers; counts the calls per token."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        hour = time.time() + 3600
        self.tokens = {
            ADMIN: TokenInfo("alice", frozenset({"admin", "member"}), hour),
            ADMIN2: TokenInfo("bob", frozenset({"admin"}), hour),
            MEMBER: TokenInfo("carol", frozenset({"member"}), hour),
        }

    def validate(self, token: str) -> TokenInfo | None:
        with self._lock:
            self.calls[token] = self.calls.get(token, 0) + 1
        if token == KEYSTONE_DOWN:
            raise KeystoneUnavailable("Keystone cannot be reached (ConnectFailure)")
        if token == REJECTED_CREDENTIALS:
            raise KeystoneUnavailable(
                "Keystone rejected the service's own credentials",
                KeystoneUnavailable.SERVICE_CREDENTIALS,
            )
        return self.tokens.get(token)
