"""HTML error pages under ``/ui/``: the JSON error of the service's handlers, as a page."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, render_template, request


def wants_html() -> bool:
    return request.path.startswith("/ui/") and not request.path.startswith("/ui/api/")


def html_error(response: Response) -> Response:
    """The same error as the JSON body, as a page; headers such as ``Allow`` are kept."""
    error = (response.get_json(silent=True) or {}).get("error", {})
    body = render_template(
        "ui/error.html",
        code=response.status_code,
        message=error.get("message", ""),
        description=error.get("description"),
    )
    page = Response(body, status=response.status_code, mimetype="text/html")
    for name, value in response.headers.items():
        if name.lower() not in ("content-type", "content-length"):
            page.headers[name] = value
    return page


def html_aware(handler: Callable[[Exception], Response]) -> Callable[[Exception], Response]:
    def handle(exc: Exception) -> Response:
        response = handler(exc)
        return html_error(response) if wants_html() else response

    return handle
