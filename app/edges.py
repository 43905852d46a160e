"""What every answer of the service gets at its edge, whatever route or error made it
(issue 22, docs/security.md): a request id, a body limit, trusted proxies, and the
security headers.

- ``X-Openstack-Request-Id``: a new ``req-<uuid>`` per request (never the caller's), on
  the answer and on every log line of the request (``app.logs``), so an operator finds
  the details a 503 does not show;
- ``[glancesync] MAX_BODY``: a longer body is a 413 before any view reads it (JSON on
  ``/v1``, a page under ``/ui/``, through the usual error handlers);
- ``[glancesync] PROXY_HOPS``: that many trusted reverse proxies' ``X-Forwarded-*``
  headers are believed (Werkzeug's ProxyFix), none by default;
- CSP with ``frame-ancestors 'none'``, ``nosniff``, ``no-referrer``, ``no-store`` and,
  over HTTPS, HSTS: set after the views and the error handlers, so error pages have them.
"""

from __future__ import annotations

import uuid

from flask import Flask, Response, g, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from app.logs import reset_request_id, set_request_id, stamp_records

REQUEST_ID_HEADER = "X-Openstack-Request-Id"
# The page loads its script and style from /ui/static/ only; JSON answers load nothing.
PAGE_CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"
STATIC_ENDPOINTS = {"ui.static"}


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def open_request() -> None:
    """First before-request hook: the request id, then the body limit (before routing
    answers 404/405, before any token is looked at)."""
    g.request_id = new_request_id()
    g.request_id_token = set_request_id(g.request_id)
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge(f"The request body is longer than {limit} bytes")


def close_request(_exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        reset_request_id(token)


def security_headers(response: Response) -> Response:
    """Last after-request hook: headers a view or a blueprint did not set itself."""
    headers = response.headers
    request_id = g.get("request_id")
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    page = request.path.startswith("/ui/") and not request.path.startswith("/ui/api/")
    headers.setdefault("Content-Security-Policy", PAGE_CSP if page else API_CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if request.endpoint not in STATIC_ENDPOINTS:
        headers.setdefault("Cache-Control", "no-store")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_edges(app: Flask, settings) -> None:
    """Called before the other hooks are registered, so ``open_request`` runs first."""
    app.config.setdefault("MAX_BODY", settings.max_body)
    app.config.setdefault("PROXY_HOPS", settings.proxy_hops)
    app.config.setdefault("SECURE_COOKIES", settings.secure_cookies)
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_BODY"]
    app.config["MAX_FORM_MEMORY_SIZE"] = app.config["MAX_BODY"]
    hops = app.config["PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
    stamp_records()
    app.before_request(open_request)
    app.after_request(security_headers)
    app.teardown_request(close_request)
