"""Test doubles shared by the API tests: a token validator that needs no Keystone.

It stands where keystonemiddleware's auth_token is called (``app.auth.TokenValidator``);
its tokens carry scopes as Keystone's do, so the policy is tested for real.
"""

from __future__ import annotations

import threading
import time

from app.auth import KeystoneUnavailable, TokenInfo

MASTER_PROJECT = "master-project-id"  # the service's own project: the master's
OTHER_PROJECT = "customer-project-id"

ADMIN = "admin-token"
ADMIN2 = "second-admin-token"
MEMBER = "member-token"
EXPIRED = "expired-token"
KEYSTONE_DOWN = "keystone-down-token"
REJECTED_CREDENTIALS = "rejected-credentials-token"
NO_ROLE = "no-role-token"  # on the master's project, with a role nobody listed
OTHER_ADMIN = "other-project-admin-token"  # admin of a customer's own project
SYSTEM_READER = "system-reader-token"
SYSTEM_ADMIN = "system-admin-token"
MASTER_READER = "master-reader-token"
DOMAIN_ADMIN = "domain-admin-token"
TOKENS = (ADMIN, ADMIN2, MEMBER, EXPIRED, KEYSTONE_DOWN, REJECTED_CREDENTIALS)


def project_token(user: str, roles: set[str], project: str = MASTER_PROJECT) -> TokenInfo:
    hour = time.time() + 3600
    return TokenInfo(user, frozenset(roles), hour, project_id=project, user_id=f"{user}-id")


class FakeValidator:
    """The TokenValidator interface with fixed answers; counts the calls per token."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        hour = time.time() + 3600
        self.tokens = {
            ADMIN: project_token("alice", {"admin", "member"}),
            ADMIN2: project_token("bob", {"admin"}),
            MEMBER: project_token("carol", {"member"}),
            NO_ROLE: project_token("nobody", {"guest"}),
            MASTER_READER: project_token("rita", {"reader"}),
            OTHER_ADMIN: project_token("mallory", {"admin", "member"}, OTHER_PROJECT),
            SYSTEM_READER: TokenInfo("sam", frozenset({"reader"}), hour, system_scope="all"),
            SYSTEM_ADMIN: TokenInfo("sara", frozenset({"admin"}), hour, system_scope="all"),
            DOMAIN_ADMIN: TokenInfo("dora", frozenset({"admin"}), hour, domain_id="default"),
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

    def master_project(self) -> str | None:
        return MASTER_PROJECT
