"""JSON error bodies for every failure (BEHAVIOUR.md 10.1): no HTML page, no stack trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger("GlanceSync-API")

# Messages of 10.1 by status code; other HTTP errors keep werkzeug's short name.
MESSAGES = {
    400: "Bad request",
    401: "The request you have made requires authentication.",
    403: "Forbidden",
    404: "Item not found",
    405: "Bad method",
    409: "Task status is syncing. Unable to delete it.",
    410: "Bad region",
    500: "Unhandled exception",
    503: "Service unavailable",
}


class ApiError(Exception):
    """An expected failure of a request, turned into the JSON body of 10.1."""

    def __init__(
        self, code: int, description: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(MESSAGES[code])
        self.code = code
        self.description = description
        self.headers = headers or {}  # e.g. ``Retry-After`` of a 503


def error_response(code: int, message: str, description: str | None = None) -> Response:
    error: dict[str, object] = {"message": message, "code": code}
    if description:
        error["description"] = description
    response = jsonify({"error": error})
    response.status_code = code
    return response


def handle_api_error(exc: ApiError) -> Response:
    response = error_response(exc.code, MESSAGES[exc.code], exc.description)
    response.headers.update(exc.headers)
    return response


def handle_http_exception(exc: HTTPException) -> Response:
    """Routing errors (404, 405) and werkzeug aborts keep their headers (e.g. ``Allow``)."""
    code = exc.code or 500
    response = error_response(code, MESSAGES.get(code, exc.name))
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def handle_unexpected(exc: Exception) -> Response:
    """Anything else is a bug: logged with its traceback, answered without it."""
    log.exception("Unhandled exception: %s", type(exc).__name__)
    return error_response(500, MESSAGES[500])


CONNECTION_ERRORS = (OperationalError, InterfaceError)


def handle_database_error(exc: DBAPIError) -> Response:
    """A lost or restarting database is an outage (503), not a bug; other database
    errors stay 500. Only the driver's exception type is logged: its text may quote the URL."""
    if not exc.connection_invalidated and not isinstance(exc, CONNECTION_ERRORS):
        return handle_unexpected(exc)
    log.error("Database unavailable: %s", type(exc.orig).__name__)
    return error_response(503, MESSAGES[503], "The task database cannot be reached")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
