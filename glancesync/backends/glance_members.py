"""The Glance backend's calls for shared images' members, visibility and retention marks
(glancesync.members, glancesync.retention), and the Keystone project look-ups of
``members = by-name``. A mixin of ``GlanceBackend``: it uses that class's clients,
sessions and error reporting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from glancesync.backends.glance_errors import kind_of
from glancesync.backends.glance_member_errors import (
    ADD,
    LIST,
    PROJECTS,
    REMOVE,
    STATUS,
    already_done,
    answer_status,
    member_kind,
    member_reason,
)
from glancesync.backends.glance_records import JSON_PATCH_TYPE, to_image
from glancesync.credentials import keystone_v3_url
from glancesync.errors import BackendError, ErrorKind
from glancesync.image import RENAMED_AT, Image

ADMIN_ROLE = "admin"


class GlanceMembers:
    """Members, visibility and the renamed mark over Glance v2 and Keystone v3."""

    def _patch(self: Any, region: str, image: Image, ops: list[dict]) -> Image:
        full = self.full_name(region)
        with self._reported(f"{full}: Update of {image.name} failed."):
            client = self._client(region, "data")
            headers = {"Content-Type": JSON_PATCH_TYPE}
            url = f"/v2/images/{image.id}"
            _, record = client.http_client.patch(url, headers=headers, data=json.dumps(ops))
            return to_image(record, full)

    def set_visibility(self: Any, region: str, image: Image, visibility: str) -> Image:
        ops = [{"op": "replace", "path": "/visibility", "value": visibility}]
        return self._patch(region, image, ops)

    def mark_renamed(self: Any, region: str, image: Image, renamed_at: str) -> Image:
        op = "replace" if RENAMED_AT in image.user_properties else "add"
        return self._patch(
            region, image, [{"op": op, "path": f"/{RENAMED_AT}", "value": renamed_at}]
        )

    @contextmanager
    def _member_call(self: Any, text: str, call: str) -> Iterator[None]:
        """Like ``_reported``, with the operator's sentence for the usual refusals
        (glance_member_errors); an answer that says "already so" is no failure."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - every library failure becomes a BackendError
            status = answer_status(exc)
            if already_done(call, status):
                return
            reason = member_reason(call, status) or self._cause(exc)
            kind = member_kind(status) or kind_of(exc)
            raise BackendError(f"{text} Cause: {reason}", kind) from None

    def image_members(self: Any, region: str, image_id: str) -> dict[str, str]:
        full = self.full_name(region)
        with self._member_call(f"{full}: Error reading the members of image {image_id}.", LIST):
            members = self._client(region, "list").image_members.list(image_id)
            return {m["member_id"]: m["status"] for m in members}

    def add_member(self: Any, region: str, image_id: str, project_id: str) -> None:
        full = self.full_name(region)
        text = f"{full}: Sharing image {image_id} with project {project_id} failed."
        with self._member_call(text, ADD):
            self._client(region, "data").image_members.create(image_id, project_id)

    def remove_member(self: Any, region: str, image_id: str, project_id: str) -> None:
        full = self.full_name(region)
        text = f"{full}: Removing member {project_id} of image {image_id} failed."
        with self._member_call(text, REMOVE):
            self._client(region, "data").image_members.delete(image_id, project_id)

    def set_member_status(
        self: Any, region: str, image_id: str, project_id: str, status: str
    ) -> None:
        full = self.full_name(region)
        text = f"{full}: Setting member {project_id} of image {image_id} {status} failed."
        with self._member_call(text, STATUS):
            self._client(region, "data").image_members.update(image_id, project_id, status)

    def may_set_member_status(self: Any) -> bool:
        """Glance's ``context_is_admin`` is the ``admin`` role: read from the token."""
        with self._reported(f"{self.target_name}: Error authenticating.", ErrorKind.AUTH):
            session = self._session("list")
            return ADMIN_ROLE in session.auth.get_access(session).role_names

    def _identity(self: Any, path: str, **params: str) -> Any:
        url = keystone_v3_url(self.target.connection.keystone_url).rstrip("/") + path
        response = self._session("list").get(url, params=params or None, raise_exc=False)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def project_names(self: Any, project_ids: list[str]) -> dict[str, tuple[str, str] | None]:
        names: dict[str, tuple[str, str] | None] = {}
        with self._member_call(f"{self.target_name}: Error reading projects.", PROJECTS):
            for pid in project_ids:
                project = (self._identity(f"/projects/{pid}") or {}).get("project")
                domain = project and self._identity(f"/domains/{project['domain_id']}")
                names[pid] = (project["name"], domain["domain"]["name"]) if domain else None
        return names

    def project_ids(self: Any, names: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        ids: dict[tuple[str, str], str | None] = {}
        with self._member_call(f"{self.target_name}: Error reading projects.", PROJECTS):
            for name, domain_name in names:
                domains = (self._identity("/domains", name=domain_name) or {}).get("domains")
                found = domains and self._identity(
                    "/projects", name=name, domain_id=domains[0]["id"]
                )
                projects = (found or {}).get("projects") or []
                ids[(name, domain_name)] = projects[0]["id"] if projects else None
        return ids
