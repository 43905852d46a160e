"""X-Auth-Token validation against Keystone v3 (BEHAVIOUR.md 10.2).

Validation runs as a before-request hook *after* routing, so unknown paths answer 404/405
before any token is looked at. The Keystone call sits behind the small ``TokenValidator``
interface so tests can plug in a fake; ``TokenCache`` wraps any validator and makes sure a
token is validated once per process until it expires.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cachetools import TLRUCache
from flask import Flask, current_app, g, request

from app.errors import ApiError
from app.metrics import record_keystone_unavailable
from app.settings import OpenStackSettings

LOG = logging.getLogger("GlanceSync-API")
INSECURE_WARNING = "[openstack] INSECURE = true: Keystone's TLS certificate is not verified"
TOKEN_HEADER = "X-Auth-Token"
CACHE_SIZE = 10_000
EXTENSION = "glancesync.auth"


@dataclass(frozen=True)
class TokenInfo:
    """What the service needs from a valid token: who, with which roles, until when."""

    user: str
    roles: frozenset[str]
    expires_at: float  # POSIX timestamp


class KeystoneUnavailable(Exception):
    """Keystone cannot be reached or rejects the service's own credentials (503).

    ``kind`` (``UNREACHABLE`` or ``SERVICE_CREDENTIALS``) is the metrics label
    (docs/monitoring.md), set where the error is raised.
    """

    UNREACHABLE = "unreachable"
    SERVICE_CREDENTIALS = "service_credentials"

    def __init__(self, message: str, kind: str = UNREACHABLE) -> None:
        super().__init__(message)
        self.kind = kind


class TokenValidator(Protocol):
    def validate(self, token: str) -> TokenInfo | None:
        """The token's info, None when invalid or expired; KeystoneUnavailable on failure."""


class KeystoneValidator:
    """Validates tokens with the service's admin session (never with request credentials)."""

    def __init__(self, settings: OpenStackSettings, timeout: float = 10.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._client = None
        self._lock = threading.Lock()

    def _keystone(self):
        """One keystoneclient per process, built on first use (after a gunicorn fork)."""
        with self._lock:
            if self._client is None:
                from keystoneauth1 import session
                from keystoneclient.v3 import client

                from glancesync.credentials import auth_plugin, quiet_insecure_warnings

                conn = self.settings.connection
                if conn.insecure:
                    quiet_insecure_warnings()
                    LOG.warning(INSECURE_WARNING)
                auth = auth_plugin(conn, conn.keystone_url)
                sess = session.Session(auth=auth, timeout=self.timeout, verify=conn.verify)
                self._client = client.Client(
                    session=sess,
                    endpoint_override=conn.keystone_url,
                    interface=conn.interface,
                )
            return self._client

    def validate(self, token: str) -> TokenInfo | None:
        """The service's own login first, so that a failure of it (503, the operator's
        problem) is never taken for a bad token (401, the caller's problem)."""
        from keystoneauth1 import exceptions as ks

        client = self._keystone()
        self._login(client.session)
        try:
            access = client.tokens.validate(token, include_catalog=False)
        except (ks.NotFound, ks.BadRequest):
            return None  # Keystone's answers for an unknown or malformed token
        except (ks.Unauthorized, ks.Forbidden):
            raise KeystoneUnavailable(
                "Keystone rejected the service's own credentials",
                KeystoneUnavailable.SERVICE_CREDENTIALS,
            ) from None
        except (ks.ConnectionError, ks.DiscoveryFailure, ks.HttpError) as exc:
            raise KeystoneUnavailable(
                f"Keystone cannot be reached ({type(exc).__name__})"
            ) from None
        expires: datetime = access.expires
        return TokenInfo(
            user=access.username or "",
            roles=frozenset(access.role_names or ()),
            expires_at=expires.timestamp(),
        )

    def _login(self, session) -> None:
        """The service's token (kept by keystoneauth until it expires); every failure is
        KeystoneUnavailable with what the operator must check."""
        from keystoneauth1 import exceptions as ks

        url = self.settings.connection.keystone_url
        try:
            session.get_token()
        except (ks.Unauthorized, ks.Forbidden):
            raise KeystoneUnavailable(
                "Keystone rejected the service's own credentials "
                "(check ADM_USER, ADM_PASS and the project in [openstack])",
                KeystoneUnavailable.SERVICE_CREDENTIALS,
            ) from None
        except ks.NotFound:
            raise KeystoneUnavailable(
                f"The service's own login to Keystone failed: {url} answered 404 "
                "(check KEYSTONE_URL)"
            ) from None
        except (ks.ConnectionError, ks.DiscoveryFailure) as exc:
            raise KeystoneUnavailable(
                f"Keystone cannot be reached ({type(exc).__name__})"
            ) from None
        except ks.HttpError as exc:
            raise KeystoneUnavailable(
                f"The service's own login to Keystone failed: {url} answered "
                f"{exc.http_status} (check KEYSTONE_URL)"
            ) from None
        except ks.ClientException as exc:
            raise KeystoneUnavailable(
                f"The service's own login to Keystone failed ({type(exc).__name__})"
            ) from None


class TokenCache:
    """Valid tokens until their expiry, LRU-bounded; rejected tokens are never kept.

    Concurrent first requests with the same token wait for one validation instead of
    each calling Keystone.
    """

    def __init__(self, validator: TokenValidator, maxsize: int = CACHE_SIZE, timer=time.time):
        self.validator = validator
        self._cache: TLRUCache = TLRUCache(
            maxsize, ttu=lambda _key, info, _now: info.expires_at, timer=timer
        )
        self._timer = timer
        self._lock = threading.Lock()
        self._pending: dict[str, threading.Lock] = {}

    def _cached(self, token: str) -> TokenInfo | None:
        with self._lock:
            return self._cache.get(token)

    def validate(self, token: str) -> TokenInfo | None:
        info = self._cached(token)
        if info is not None:
            return info
        with self._lock:
            token_lock = self._pending.setdefault(token, threading.Lock())
        with token_lock:
            try:
                info = self._cached(token)
                if info is None:
                    info = self.validator.validate(token)
                    if info is not None and info.expires_at > self._timer():
                        with self._lock:
                            self._cache[token] = info
                    elif info is not None:
                        info = None
                return info
            finally:
                with self._lock:
                    self._pending.pop(token, None)


def authenticate(cache: TokenCache, required_roles: tuple[str, ...]) -> TokenInfo:
    """The caller's token info, or the 401/403/503 of 10.1."""
    token = request.headers.get(TOKEN_HEADER, "").strip()
    if not token:
        raise ApiError(401)
    try:
        info = cache.validate(token)
    except KeystoneUnavailable as exc:
        record_keystone_unavailable(exc)
        raise ApiError(503, str(exc)) from None
    if info is None:
        raise ApiError(401)
    if required_roles and not info.roles.intersection(required_roles):
        raise ApiError(403, "The token needs one of these roles: " + ", ".join(required_roles))
    return info


PUBLIC_ENDPOINTS = {"api.info", "api.openapi"}
# Blueprints with their own access check: the web page's session cookie, /metrics' Bearer.
OWN_AUTH_BLUEPRINTS = {"ui", "metrics"}


def check_request() -> None:
    """Before-request hook: routing errors first, then the token (10.1 check order)."""
    if request.routing_exception is not None:
        raise request.routing_exception
    if request.endpoint in PUBLIC_ENDPOINTS or request.blueprint in OWN_AUTH_BLUEPRINTS:
        return
    cache: TokenCache = current_app.extensions[EXTENSION]
    g.token_info = authenticate(cache, current_app.config["REQUIRED_ROLES"])


def init_auth(app: Flask, validator: TokenValidator) -> None:
    size = app.config.get("TOKEN_CACHE_SIZE", CACHE_SIZE)
    app.extensions[EXTENSION] = TokenCache(validator, size)
    app.before_request(check_request)
