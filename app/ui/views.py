"""The routes of the web page (issue 16): sign-in/out, the page, and its JSON endpoints.

Every route of the blueprint but the sign-in form and the static files needs a signed-in
browser; a signed-out one is sent to the sign-in page (the JSON endpoints answer 401, and
the page's script then goes there). Every POST needs the session's CSRF token.
"""

from __future__ import annotations

import logging
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
from sqlalchemy import func, select

from app.auth import KeystoneUnavailable, keystone_unavailable
from app.errors import ApiError, error_response
from app.metrics import record_keystone_unavailable
from app.models import FAILED, SYNCED, Task, db, utcnow
from app.regions import core
from app.tasks import cancel as cancel_task
from app.tasks import start_sync
from app.ui import sessions, throttle
from app.ui.errorpages import html_error
from app.ui.matrix import build_matrix, target_of
from app.ui.shared_matrix import MATRIX_EXTENSION, MAX_ROWS, RowQuery, SharedMatrix, rows

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
LOG = logging.getLogger("GlanceSync-API")


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
        raise keystone_unavailable(exc) from None
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


# Longer fields are no user, project or domain Keystone knows (its columns hold 255).
FIELD_CAP = 255
PASSWORD_CAP = 4096
# One message whatever Keystone or the policy refused: the page tells no one whether a
# password was right (an oracle, and a way to lock accounts by guessing on).
SIGNIN_FAILED = "Sign-in failed: Wrong user name, password, project or domain."
KEYSTONE_DOWN = "Sign-in failed: Keystone cannot be reached."


@bp.post("/signin")
def signin() -> Response:
    form = {key: request.form.get(key, "").strip() for key in ("user", "project", "domain")}
    form["domain"] = form["domain"] or "Default"
    password = request.form.get("password", "")
    if any(len(value) > FIELD_CAP for value in form.values()) or len(password) > PASSWORD_CAP:
        blank = {"user": "", "project": "", "domain": "Default"}
        return signin_page("A field is too long.", 400, blank)
    if not sessions.csrf_ok(request.cookies.get(sessions.SIGNIN_COOKIE, "")):
        return signin_page("The form had expired; please sign in again.", 400, form)
    if not (form["user"] and password and form["project"]):
        return signin_page("User, password and project are required.", 400, form)
    address = request.remote_addr or "-"
    wait = throttle.retry_after(address, form["user"])
    if wait:
        LOG.warning("Sign-in of %r from %s throttled for %d s", form["user"], address, wait)
        page = signin_page("Too many failed sign-ins; please wait and try again.", 429, form)
        page.headers["Retry-After"] = str(wait)
        return page
    creds = sessions.Credentials(form["user"], password, form["project"], form["domain"])
    try:
        session_id, row = sessions.sign_in(creds)
    except sessions.SignInRefused as exc:
        LOG.info("Sign-in of %r from %s refused: %s", form["user"], address, exc)
        throttle.record_failure(address, form["user"])
        return signin_page(SIGNIN_FAILED, 401, form)
    except KeystoneUnavailable as exc:
        record_keystone_unavailable(exc)
        LOG.warning("Sign-in failed, Keystone unavailable: %s", exc)
        return signin_page(KEYSTONE_DOWN, 503, form)
    throttle.forget_user(form["user"])
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


def row_query() -> RowQuery:
    """``?name=`` (part of an image name), ``offset`` and ``limit`` (1 to MAX_ROWS)."""
    try:
        offset = int(request.args.get("offset", "0"))
        limit = request.args.get("limit")
        limit = None if limit is None else int(limit)
    except ValueError:
        raise ApiError(400, "offset and limit must be integers") from None
    if offset < 0 or (limit is not None and not 1 <= limit <= MAX_ROWS):
        raise ApiError(400, f"offset must be 0 or more, limit from 1 to {MAX_ROWS}")
    return RowQuery(request.args.get("name", "").strip()[:255], offset, limit)


@bp.get("/api/matrix")
def matrix() -> Response:
    """The shared matrix (built at most once per MATRIX_TTL), filtered and paged here."""
    query = row_query()
    shared: SharedMatrix = current_app.extensions[MATRIX_EXTENSION]
    gs = core().glancesync()
    regions = page_regions()
    whole = shared.get(regions, lambda names: build_matrix(gs, names), last_sync_end(regions))
    return jsonify(rows(whole, query))


def last_sync_end(regions: list[str]):
    """When the last sync of ``regions`` ended (any process or worker): a new end means
    new images, so the shared matrix is built again."""
    ended = Task.status.in_((SYNCED, FAILED))
    return db.session.scalar(select(func.max(Task.updated)).where(Task.region.in_(regions), ended))


@bp.get("/api/tasks")
def tasks() -> Response:
    """The newest tasks of each region, with per-image results and live progress: at most
    TASKS_PER_REGION each, chosen by the database in one query (not every row read)."""
    regions = page_regions()
    found: dict[str, list[dict]] = {region: [] for region in regions}
    rank = (
        func.row_number()
        .over(partition_by=Task.region, order_by=(Task.created.desc(), Task.id.desc()))
        .label("rank")
    )
    newest = select(Task.id, rank).where(Task.region.in_(regions)).subquery()
    query = (
        select(Task)
        .join(newest, Task.id == newest.c.id)
        .where(newest.c.rank <= TASKS_PER_REGION)
        .order_by(Task.created.desc(), Task.id.desc())
    )
    for task in db.session.scalars(query):
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
