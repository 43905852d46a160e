"""The routes of reference 10.4: the ``/v1`` API and the compatibility ``/regions`` routes.

Authentication has already run (before-request hook) when a view starts; each view then
checks the region (410) before the resource (404/409), the order of 10.1.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import delete, select, text
from sqlalchemy.exc import SQLAlchemyError

from app.errors import ApiError, error_response, unavailable
from app.metrics import record_backend_error, record_statuses
from app.models import QUEUED, SYNCING, Task, db
from app.regions import core
from app.tasks import cancel, start_sync
from app.tasks.groups import requested, resolve_group, start_group
from glancesync.errors import BackendError

bp = Blueprint("api", __name__)
OPENAPI_FILE = Path(__file__).with_name("openapi.json")


@cache
def openapi_document() -> dict:
    with OPENAPI_FILE.open(encoding="utf-8") as stream:
        return json.load(stream)


@bp.get("/")
def info() -> Response:
    s = current_app.config["SETTINGS"]
    return jsonify(
        {
            "id": f"v{s.version}",
            "owner": s.owner,
            "status": s.status,
            "version": s.version,
            "updated": s.updated,
            "runningfrom": current_app.config["RUNNING_FROM"],
            "href": s.api_info_url,
        }
    )


@bp.get("/v1/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())


@bp.get("/healthcheck")
def healthcheck() -> tuple[Response, int]:
    """For a load balancer: 503 while the database does not answer, or while the operator's
    ``[glancesync] DRAIN_FILE`` exists (the instance leaves the pool before an upgrade)."""
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError:
        db.session.rollback()
        database = "unreachable"
    drain_file = current_app.config["SETTINGS"].drain_file
    if database != "ok":
        status = "unavailable"
    elif drain_file and os.path.exists(drain_file):
        status = "draining"
    else:
        status = "ok"
    return jsonify({"status": status, "database": database}), 200 if status == "ok" else 503


# -- images ------------------------------------------------------------------------------
def image_statuses(region: str) -> Response:
    full = core().resolve(region)
    try:
        images = core().glancesync().image_report(full)
    except BackendError as exc:
        record_backend_error(full, exc)
        raise unavailable(f"The Glance of region {full}", exc) from None
    record_statuses(full, [image["status"] for image in images])
    name = request.args.get("image")
    if name is not None:
        images = [image for image in images if image["name"] == name]
    return jsonify({"images": images})


@bp.get("/v1/regions/<region>/images")
def images(region: str) -> Response:
    return image_statuses(region)


# -- tasks -------------------------------------------------------------------------------
def task_location(task: Task) -> str:
    return f"/v1/regions/{quote(task.region, safe=':')}/tasks/{task.task_id}"


def find_task(full: str, task_id: str) -> Task:
    """A task of that region; a task of another region is as unknown as a missing one."""
    task = db.session.scalars(
        select(Task).where(Task.task_id == task_id, Task.region == full)
    ).first()
    if task is None:
        raise ApiError(404)
    return task


def delete_task(full: str, task_id: str) -> None:
    """Delete a finished task; 409 while it is queued or syncing, 404 when it is not there."""
    task = find_task(full, task_id)
    result = db.session.execute(
        delete(Task).where(Task.id == task.id, Task.status.not_in((QUEUED, SYNCING)))
    )
    db.session.commit()
    if not result.rowcount:
        db.session.expire_all()
        find_task(full, task_id)
        raise ApiError(409)


def empty(code: int) -> Response:
    """No body; the JSON content type is kept so that every answer has the same one."""
    return Response(status=code, mimetype="application/json")


@bp.post("/v1/regions/<region>/tasks")
def create_task(region: str) -> tuple[Response, int, dict]:
    full = core().resolve(region)
    task, created = start_sync(full, g.token_info.user)
    return jsonify(task.to_dict()), 202 if created else 200, {"Location": task_location(task)}


MAX_PAGE = 1000


def page_limit() -> int | None:
    """``?limit=``: None when absent (every task, as before pagination existed)."""
    text = request.args.get("limit")
    if text is None:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise ApiError(400, f"limit must be an integer from 1 to {MAX_PAGE}")
    return int(text)


def after_marker(full: str, query):
    """Restrict ``query`` to the tasks older than ``?marker=`` (newest-first order)."""
    marker_id = request.args.get("marker")
    if marker_id is None:
        return query
    marker = db.session.scalars(
        select(Task).where(Task.task_id == marker_id, Task.region == full)
    ).first()
    if marker is None:
        raise ApiError(400, "marker is not a task of this region")
    older = Task.created < marker.created
    same_time = (Task.created == marker.created) & (Task.id < marker.id)
    return query.where(older | same_time)


@bp.post("/v1/tasks")
def create_task_group() -> tuple[Response, int]:
    """One task per region, the new ones run as one fan-out group (``app.tasks.groups``)."""
    regions = resolve_group(requested(request.get_json(silent=True)))
    tasks = start_group(regions, g.token_info.user)
    code = 202 if any(created for _, created in tasks) else 200
    return jsonify({"tasks": [task.to_dict() for task, _ in tasks]}), code


@bp.get("/v1/regions/<region>/tasks")
def list_tasks(region: str) -> Response:
    """Newest first; with ``limit``, one page and a ``next`` link while more remain."""
    limit = page_limit()  # query parameters before the region (README, "Errors")
    full = core().resolve(region)
    query = after_marker(full, select(Task).where(Task.region == full))
    query = query.order_by(Task.created.desc(), Task.id.desc())
    if limit is not None:
        query = query.limit(limit + 1)
    tasks = list(db.session.scalars(query))
    body: dict = {"tasks": [task.to_dict(with_images=False) for task in tasks[:limit]]}
    if limit is not None and len(tasks) > limit:
        last = tasks[limit - 1].task_id
        body["next"] = f"/v1/regions/{quote(full, safe=':')}/tasks?limit={limit}&marker={last}"
    return jsonify(body)


@bp.get("/v1/regions/<region>/tasks/<task_id>")
def get_task(region: str, task_id: str) -> Response:
    return jsonify(find_task(core().resolve(region), task_id).to_dict())


@bp.delete("/v1/regions/<region>/tasks/<task_id>")
def remove_task(region: str, task_id: str) -> Response:
    delete_task(core().resolve(region), task_id)
    return empty(204)


NOT_SYNCING = "Task is not syncing. Unable to cancel it."


@bp.post("/v1/regions/<region>/tasks/<task_id>/cancel")
def cancel_task(region: str, task_id: str) -> Response | tuple[Response, int]:
    """Ask the sync to stop (202, the task still ``syncing``): it ends ``failed`` with the
    message ``cancelled`` within a chunk once its worker sees the request. 409 when the
    task already ended, or its worker died (it is marked failed, as a POST would)."""
    task = find_task(core().resolve(region), task_id)
    if not cancel(task):
        return error_response(409, NOT_SYNCING)
    db.session.expire_all()
    return jsonify(find_task(task.region, task_id).to_dict()), 202


# -- compatibility routes of the published v1 (Apiary) spec -----------------------------
def short(task: Task) -> Response:
    return jsonify({"taskId": task.task_id, "status": task.status})


@bp.get("/regions/<region>")
def compat_images(region: str) -> Response:
    return image_statuses(region)


@bp.post("/regions/<region>")
def compat_create_task(region: str) -> Response:
    task, _ = start_sync(core().resolve(region), g.token_info.user)
    return short(task)


@bp.get("/regions/<region>/tasks/<task_id>")
def compat_get_task(region: str, task_id: str) -> Response:
    return short(find_task(core().resolve(region), task_id))


@bp.delete("/regions/<region>/tasks/<task_id>")
def compat_remove_task(region: str, task_id: str) -> Response:
    delete_task(core().resolve(region), task_id)
    return empty(200)
