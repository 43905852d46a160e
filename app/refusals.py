"""A short memory of refused tokens, in front of auth_token (issue 22, docs/security.md).

auth_token caches the tokens it accepts, not those it refuses: without this, every
request with a made-up token costs a call to Keystone. A refusal is remembered for a few
seconds only (a token Keystone has just issued may not be valid everywhere yet), in a
bounded LRU so a flood of random tokens cannot grow the process. Tokens are kept as
their SHA-256, never as they are. Keystone outages are never remembered.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

REFUSAL_TTL = 10.0  # seconds a refused token is answered 401 without asking Keystone
REFUSAL_SIZE = 10_000  # refused tokens remembered per process, at most


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RefusedTokens:
    """Bounded, time-limited set of refused tokens (thread-safe)."""

    def __init__(
        self,
        size: int = REFUSAL_SIZE,
        ttl: float = REFUSAL_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.ttl = ttl
        self.clock = clock
        self._until: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, token: str) -> None:
        key = _key(token)
        with self._lock:
            self._until[key] = self.clock() + self.ttl
            self._until.move_to_end(key)
            while len(self._until) > self.size:
                self._until.popitem(last=False)

    def refused(self, token: str) -> bool:
        key = _key(token)
        with self._lock:
            until = self._until.get(key)
            if until is None:
                return False
            if until <= self.clock():
                del self._until[key]
                return False
            return True


class RefusalCache:
    """A ``TokenValidator`` that answers a recently refused token itself."""

    def __init__(self, inner, refused: RefusedTokens | None = None) -> None:
        self.inner = inner
        self.refused = refused or RefusedTokens()

    def validate(self, token: str):
        if self.refused.refused(token):
            return None
        info = self.inner.validate(token)
        if info is None:
            self.refused.add(token)
        return info

    def master_project(self) -> str | None:
        return self.inner.master_project()
