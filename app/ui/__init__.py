"""The web status page at ``/ui/`` (issue 16): sign-in, image matrix, tasks and progress.

``init_ui`` registers the blueprint and makes the service's error handlers answer an HTML
page under ``/ui/`` (the page's JSON endpoints under ``/ui/api/`` keep the JSON errors of
reference 10.1, as do ``/v1`` and the compatibility routes).
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from app import errors
from app.errors import ApiError
from app.ui.errorpages import html_aware
from app.ui.sessions import keystone_authenticator, keystone_revoker
from app.ui.shared_matrix import MATRIX_EXTENSION, SharedMatrix
from app.ui.views import bp

DEFAULTS = {
    "UI_POLL_INTERVAL": 2.0,  # seconds between two reads of the tasks by the page
    "UI_AUTHENTICATOR": None,  # None: password sign-in at the service's Keystone
    "UI_REVOKER": None,  # None: sign-out revokes the token at the service's Keystone
}


def init_ui(app: Flask) -> None:
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    app.config.setdefault("VIEWER_ROLES", app.config["SETTINGS"].openstack.viewer_roles)
    if app.config["UI_AUTHENTICATOR"] is None:
        app.config["UI_AUTHENTICATOR"] = keystone_authenticator(app.config["SETTINGS"].openstack)
    app.config.setdefault("MATRIX_TTL", app.config["SETTINGS"].matrix_ttl)
    app.extensions[MATRIX_EXTENSION] = SharedMatrix(app.config["MATRIX_TTL"])
    if app.config["UI_REVOKER"] is None:
        app.config["UI_REVOKER"] = keystone_revoker(app.config["SETTINGS"].openstack)
    for exc_class, handler in (
        (ApiError, errors.handle_api_error),
        (DBAPIError, errors.handle_database_error),
        (HTTPException, errors.handle_http_exception),
        (Exception, errors.handle_unexpected),
    ):
        app.register_error_handler(exc_class, html_aware(handler))
    app.register_blueprint(bp)
