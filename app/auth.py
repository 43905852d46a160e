"""Who is calling, and may they: keystonemiddleware's auth_token and oslo.policy.

Validation is keystonemiddleware's ``auth_token``, the component every OpenStack API uses
(its cache, memcached sharing, service tokens, revocation within ``token_cache_time``).
It is not wrapped around the WSGI app: it is *called* from a before-request hook, after
routing, so unknown paths and methods still answer 404/405 before any token is looked at,
and always without ``delay_auth_decision`` (which would turn a Keystone outage into an
"invalid token"). The call sits behind the small ``TokenValidator`` interface so the API
tests plug in a fake at exactly that place. Authorization is the policy of
``app.policy`` (docs/security.md).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask, current_app, g, request

from app.errors import ApiError
from app.metrics import record_keystone_unavailable
from app.policy import SYNC, VIEW, allowed
from app.settings import OpenStackSettings

LOG = logging.getLogger("GlanceSync-API")
INSECURE_WARNING = "[openstack] INSECURE = true: Keystone's TLS certificate is not verified"
TOKEN_HEADER = "X-Auth-Token"
SERVICE_TOKEN_HEADER = "X-Service-Token"
EXTENSION = "glancesync.auth"
POLICY_EXTENSION = "glancesync.policy"
# What callers are told; the middleware logs the details (URLs, causes) for the operator.
UNAVAILABLE = "Keystone cannot be reached or refuses the service's own credentials"
READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class TokenInfo:
    """What the service needs from a valid token: who, with which roles and scope, until
    when. Scope matters: a role on another customer's project grants nothing here."""

    user: str
    roles: frozenset[str]
    expires_at: float  # POSIX timestamp
    project_id: str | None = None
    system_scope: str | None = None  # "all" for a system-scoped token
    user_id: str = ""
    domain_id: str | None = None

    def creds(self) -> dict[str, Any]:
        """oslo.policy's credentials of the token."""
        return {
            "user_id": self.user_id,
            "roles": sorted(self.roles),
            "project_id": self.project_id,
            "system_scope": self.system_scope,
            "domain_id": self.domain_id,
        }


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

    def master_project(self) -> str | None:
        """The id of the master's project (the service's own), None if system-scoped."""


def token_info(access) -> TokenInfo:
    """A keystoneauth AccessInfo as the plain data the service keeps."""
    return TokenInfo(
        user=access.username or "",
        roles=frozenset(access.role_names or ()),
        expires_at=access.expires.timestamp(),
        project_id=access.project_id,
        system_scope="all" if access.system_scoped else None,
        user_id=access.user_id or "",
        domain_id=access.domain_id if access.domain_scoped else None,
    )


class _NoDebugTraceback(logging.Filter):
    """auth_token logs a traceback at DEBUG for every refused token: one line is enough
    (a random token is the caller's mistake, not a fault of the service)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG and record.exc_info:
            record.exc_info = None
            record.exc_text = None
        return True


def _accept(environ, start_response):
    """The inner WSGI app: reached only when auth_token accepted the token."""
    start_response("204 No Content", [])
    return [b""]


class KeystoneValidator:
    """auth_token, called once per request with a minimal WSGI environ of the token.

    Its answers are read back: the inner app reached means valid (the AccessInfo is in
    ``keystone.token_auth``), 401 invalid, anything else Keystone unavailable.
    """

    def __init__(self, settings: OpenStackSettings, conf=None) -> None:
        self.settings = settings
        self.conf = conf
        self._middleware = None
        self._project: str | None = None
        self._project_known = False
        self._lock = threading.RLock()
        # validations in progress, by token digest: (the gate, how many wait on it)
        self._pending: dict[str, tuple[threading.Lock, int]] = {}

    def middleware(self):
        """One auth_token per process, built on first use (after a gunicorn fork)."""
        with self._lock:
            if self._middleware is None:
                from keystonemiddleware import auth_token

                from app.oslo_config import AUTHTOKEN, authtoken_conf

                if self.conf is None:
                    self.conf = authtoken_conf(self.settings)
                if self.conf[AUTHTOKEN].insecure:
                    from glancesync.credentials import quiet_insecure_warnings

                    quiet_insecure_warnings()
                    LOG.warning(INSECURE_WARNING)
                logging.getLogger("keystonemiddleware.auth_token").addFilter(_NoDebugTraceback())
                options = {"oslo_config_config": self.conf, "delay_auth_decision": False}
                self._middleware = auth_token.AuthProtocol(_accept, options)
            return self._middleware

    def validate(self, token: str, service_token: str = "") -> TokenInfo | None:
        """Concurrent first requests with one token wait for one validation: the next ones
        find it in auth_token's cache instead of each calling Keystone (a burst of 200
        POSTs with one token costs one validation per process, not one per thread)."""
        key = hashlib.sha256(f"{token}\0{service_token}".encode()).hexdigest()
        with self._lock:
            gate, waiting = self._pending.get(key, (threading.Lock(), 0))
            self._pending[key] = (gate, waiting + 1)
        try:
            with gate:
                return self._validate(token, service_token)
        finally:
            with self._lock:
                gate, waiting = self._pending[key]
                if waiting <= 1:
                    del self._pending[key]
                else:
                    self._pending[key] = (gate, waiting - 1)

    def _validate(self, token: str, service_token: str) -> TokenInfo | None:
        import webob

        environ = webob.Request.blank("/").environ
        environ["HTTP_X_AUTH_TOKEN"] = token
        if service_token:
            environ["HTTP_X_SERVICE_TOKEN"] = service_token
        response = webob.Request(environ).get_response(self.middleware())
        if response.status_int == 204:
            return token_info(environ["keystone.token_auth"].user)
        if response.status_int == 401:
            return None
        LOG.warning("Token validation failed: auth_token answered %s", response.status)
        raise KeystoneUnavailable(UNAVAILABLE)

    def master_project(self) -> str | None:
        """[openstack]'s project id, else the project of the service's own token."""
        if self.settings.connection.project_id:
            return self.settings.connection.project_id
        with self._lock:
            if not self._project_known:
                self._project = self._own_project()
                self._project_known = True
            return self._project

    def _own_project(self) -> str | None:
        from keystoneauth1 import exceptions as ks

        middleware = self.middleware()
        try:
            return middleware._auth.get_project_id(middleware._session)
        except ks.ClientException as exc:
            LOG.warning("The service's own login to Keystone failed: %s", exc)
            raise KeystoneUnavailable(UNAVAILABLE) from None


def keystone_unavailable(exc: KeystoneUnavailable) -> ApiError:
    """The 503 of 10.1 naming Keystone only; the cause is logged (with the request id)."""
    record_keystone_unavailable(exc)
    LOG.warning("Keystone unavailable (%s): %s", exc.kind, exc)
    return ApiError(503, UNAVAILABLE)


def may(rule: str, info: TokenInfo) -> bool:
    """The policy's decision for this token; KeystoneUnavailable when the master's
    project cannot be learnt."""
    validator: TokenValidator = current_app.extensions[EXTENSION]
    project = validator.master_project()
    return allowed(current_app.extensions[POLICY_EXTENSION], rule, info.creds(), project)


def refusal(rule: str) -> str:
    """The 403 description: the rule and its default roles (the policy may differ)."""
    roles = current_app.config["REQUIRED_ROLES"]
    if rule == VIEW:
        roles = roles + current_app.config.get("VIEWER_ROLES", ())
    return (
        f"The token is not allowed {rule}: by default one of the roles "
        f"{', '.join(roles)}, system-scoped or on the service's project"
    )


def authenticate(rule: str) -> TokenInfo:
    """The caller's token info, or the 401/403/503 of 10.1."""
    token = request.headers.get(TOKEN_HEADER, "").strip()
    if not token:
        raise ApiError(401)
    validator: TokenValidator = current_app.extensions[EXTENSION]
    try:
        info = validator.validate(token)
        permitted = info is not None and may(rule, info)
    except KeystoneUnavailable as exc:
        raise keystone_unavailable(exc) from None
    if info is None:
        raise ApiError(401)
    if not permitted:
        raise ApiError(403, refusal(rule))
    return info


PUBLIC_ENDPOINTS = {"api.info", "api.openapi", "api.healthcheck"}
# Blueprints with their own access check: the web page's session cookie, /metrics' Bearer.
OWN_AUTH_BLUEPRINTS = {"ui", "metrics"}


def check_request() -> None:
    """Before-request hook: routing errors first, then the token (10.1 check order)."""
    if request.routing_exception is not None:
        raise request.routing_exception
    if request.endpoint in PUBLIC_ENDPOINTS or request.blueprint in OWN_AUTH_BLUEPRINTS:
        return
    g.token_info = authenticate(VIEW if request.method in READ_METHODS else SYNC)


def init_auth(app: Flask, validator: TokenValidator, enforcer) -> None:
    app.extensions[EXTENSION] = validator
    app.extensions[POLICY_EXTENSION] = enforcer
    app.before_request(check_request)
