"""The routes of the web page (issue 16): sign-in/out, the page, and its JSON endpoints.

Every route of the blueprint but the sign-in form and the static files needs a signed-in
browser; a signed-out one is sent to the sign-in page (the JSON endpoints answer 401, and
the page's script then goes there). Every POST needs the session's CSRF token.
"""

from __future__ import annotations

import secrets

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
)
from sqlalchemy import select

from app.auth import KeystoneUnavailable
from app.errors import ApiError, error_response
from app.metrics import record_keystone_unavailable
from app.models import Task, db, utcnow
from app.regions import core
from app.tasks import cancel as cancel_task
from app.tasks import start_sync
from app.ui import sessions
from app.ui.errorpages import html_error
from app.ui.matrix import build_matrix, target_of

bp = Blueprint(
    "ui",
    __name__,
    url_prefix="/ui",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
OPEN_ENDPOINTS = {"ui.signin_form", "ui.signin", "ui.static"}
TASKS_PER_REGION = 5


def is_api() -> bool:
    return request.path.startswith("/ui/api/")


@bp.before_request
def require_session() -> Response | None:
    """Signed-in user (g.viewer) and the CSRF token of every POST."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    try:
        viewer = sessions.current_viewer()
    except KeystoneUnavailable as exc:
        record_keystone_unavailable(exc)
        raise ApiError(503, str(exc)) from None
    if viewer is None:
        if is_api():
            return error_response(401, "The request you have made requires authentication.")
        return redirect("/ui/signin", code=303)
    g.viewer = viewer
    # Forms and every JSON call carry the session's token (the script sends the header).
    needs_csrf = request.method == "POST" or is_api()
    if needs_csrf and not sessions.csrf_ok(viewer.csrf_token):
        refused = error_response(400, "Bad request", "Missing or wrong CSRF token")
        return refused if is_api() else html_error(refused)
    return None


@bp.after_request
def headers(response: Response) -> Response:
    """Pages and JSON show live state and a user's rights: never from a cache."""
    if request.endpoint != "ui.static":
        response.headers["Cache-Control"] = "no-store"
    # Scripts and styles come from /ui/static/ only; no framing (clickjacking).
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    return response


# -- sign-in --------------------------------------------------------------------------
def signin_page(error: str | None = None, code: int = 200, form: dict | None = None) -> Response:
    """The form with a fresh double-submit CSRF token (cookie and hidden field)."""
    token = secrets.token_urlsafe(32)
    fields = form or {"user": "", "project": "", "domain": "Default"}
    body = render_template("ui/signin.html", error=error, csrf_token=token, form=fields)
    response = Response(body, status=code, mimetype="text/html")
    sessions.set_cookie(response, sessions.SIGNIN_COOKIE, token)
    return response


@bp.get("/signin")
def signin_form() -> Response:
    return signin_page()


@bp.post("/signin")
def signin() -> Response:
    form = {key: request.form.get(key, "").strip() for key in ("user", "project", "domain")}
    form["domain"] = form["domain"] or "Default"
    if not sessions.csrf_ok(request.cookies.get(sessions.SIGNIN_COOKIE, "")):
        return signin_page("The form had expired; please sign in again.", 400, form)
    password = request.form.get("password", "")
    if not (form["user"] and password and form["project"]):
        return signin_page("User, password and project are required.", 400, form)
    creds = sessions.Credentials(form["user"], password, form["project"], form["domain"])
    try:
        session_id, row = sessions.sign_in(creds)
    except sessions.SignInRefused as exc:
        return signin_page(f"Sign-in failed: {exc}.", 401, form)
    except KeystoneUnavailable as exc:
        record_keystone_unavailable(exc)
        return signin_page(f"Sign-in failed: {exc}.", 503, form)
    response = redirect("/ui/", code=303)
    max_age = max(0, int((row.expires - utcnow()).total_seconds()))
    sessions.set_cookie(response, sessions.COOKIE, session_id, max_age)
    sessions.clear_cookie(response, sessions.SIGNIN_COOKIE)
    return response


@bp.post("/signout")
def signout() -> Response:
    sessions.sign_out()
    response = redirect("/ui/signin", code=303)
    sessions.clear_cookie(response, sessions.COOKIE)
    return response


# -- the page -------------------------------------------------------------------------
def page_regions() -> list[str]:
    """Every known region but the master region, master target's regions first."""
    gs = core().glancesync()
    master = gs.full_name(gs.config.main.master_region)
    regions = [region for region in core().regions() if region != master]
    return sorted(regions, key=lambda r: (target_of(r) != "master", r))


@bp.get("/")
def page() -> str:
    regions = page_regions()
    return render_template(
        "ui/page.html",
        viewer=g.viewer,
        regions=regions,
        targets=sorted({target_of(region) for region in regions}),
        poll=current_app.config["UI_POLL_INTERVAL"],
    )


@bp.get("/api/matrix")
def matrix() -> Response:
    return jsonify(build_matrix(core().glancesync(), page_regions()))


@bp.get("/api/tasks")
def tasks() -> Response:
    """The newest tasks of each region, with per-image results and live progress."""
    regions = page_regions()
    found: dict[str, list[dict]] = {region: [] for region in regions}
    query = (
        select(Task).where(Task.region.in_(regions)).order_by(Task.created.desc(), Task.id.desc())
    )
    for task in db.session.scalars(query):
        if len(found[task.region]) < TASKS_PER_REGION:
            found[task.region].append(task.to_dict())
    return jsonify({"regions": [{"name": r, "tasks": found[r]} for r in regions]})


def may_sync() -> None:
    if not g.viewer.can_sync:
        roles = ", ".join(current_app.config["REQUIRED_ROLES"])
        raise ApiError(403, "Syncing and cancelling need one of these roles: " + roles)


@bp.post("/api/regions/<region>/tasks")
def sync_now(region: str) -> tuple[Response, int]:
    may_sync()
    full = core().resolve(region)
    task, created = start_sync(full, g.viewer.user)
    return jsonify(task.to_dict()), 202 if created else 200


@bp.post("/api/regions/<region>/tasks/<task_id>/cancel")
def cancel(region: str, task_id: str) -> Response | tuple[Response, int]:
    may_sync()
    full = core().resolve(region)
    task = db.session.scalars(
        select(Task).where(Task.task_id == task_id, Task.region == full)
    ).first()
    if task is None:
        raise ApiError(404)
    if not cancel_task(task):
        return error_response(409, "Task is not syncing. Unable to cancel it.")
    return jsonify({"taskId": task_id, "region": full, "cancelRequested": True}), 202
