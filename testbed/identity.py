"""Minimal Keystone v3 admin client (stdlib only) to fill the catalog and users.

The testbed runs from the product env but must not depend on glancesync, and this is
all it needs: get a token, then POST regions, services, endpoints, projects, users.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from testbed.errors import TestbedError


def password_auth(
    username: str,
    password: str,
    project_name: str,
    user_domain_name: str = "Default",
    project_domain_name: str = "Default",
) -> dict[str, Any]:
    """The body of ``POST /v3/auth/tokens`` for a project-scoped password token."""
    user = {"name": username, "password": password, "domain": {"name": user_domain_name}}
    project = {"name": project_name, "domain": {"name": project_domain_name}}
    return {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": project},
        }
    }


class KeystoneAdmin:
    def __init__(self, url: str, username: str, password: str, project: str) -> None:
        self.url = url.rstrip("/")  # ends in /v3
        body = password_auth(username, password, project)
        headers, data = self._call("POST", "/auth/tokens", body, token=None)
        self.token = headers["X-Subject-Token"]
        self.project_id: str = data["token"]["project"]["id"]
        self.user_id: str = data["token"]["user"]["id"]

    def _call(
        self, method: str, path: str, body: Any = None, token: str | None = ""
    ) -> tuple[Any, Any]:
        req = urllib.request.Request(self.url + path, method=method)
        req.add_header("Content-Type", "application/json")
        if token is not None:
            req.add_header("X-Auth-Token", token or self.token)
        payload = json.dumps(body).encode() if body is not None else None
        try:
            with urllib.request.urlopen(req, payload, timeout=30) as resp:
                raw = resp.read()
                return resp.headers, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise TestbedError(f"keystone {method} {path} -> {exc.code}: {detail}") from None

    def post(self, path: str, body: Any) -> Any:
        return self._call("POST", path, body)[1]

    def get(self, path: str) -> Any:
        return self._call("GET", path)[1]

    def put(self, path: str) -> None:
        self._call("PUT", path)

    def role_id(self, name: str) -> str:
        roles = self.get(f"/roles?name={name}")["roles"]
        if roles:
            return str(roles[0]["id"])
        return str(self.post("/roles", {"role": {"name": name}})["role"]["id"])

    def create_project(self, name: str) -> str:
        body = {"project": {"name": name, "domain_id": "default"}}
        return str(self.post("/projects", body)["project"]["id"])

    def create_user(self, name: str, password: str, project_id: str, roles: list[str]) -> str:
        body = {
            "user": {
                "name": name,
                "password": password,
                "domain_id": "default",
                "default_project_id": project_id,
            }
        }
        user_id = str(self.post("/users", body)["user"]["id"])
        for role in roles:
            self.put(f"/projects/{project_id}/users/{user_id}/roles/{self.role_id(role)}")
        return user_id

    def add_region(self, region: str) -> None:
        existing = {r["id"] for r in self.get("/regions")["regions"]}
        if region not in existing:
            self.post("/regions", {"region": {"id": region}})

    def add_endpoint(
        self, service_id: str, region: str, url: str, interface: str = "public"
    ) -> None:
        self.add_region(region)
        self.post(
            "/endpoints",
            {
                "endpoint": {
                    "service_id": service_id,
                    "interface": interface,
                    "region_id": region,
                    "url": url,
                }
            },
        )

    def service_id(self, service_type: str) -> str:
        return str(self.get(f"/services?type={service_type}")["services"][0]["id"])

    def create_application_credential(self, name: str) -> dict[str, str]:
        """An application credential of the signed-in user on its project: id and secret."""
        body = {"application_credential": {"name": name, "description": "glancesync testbed"}}
        made = self.post(f"/users/{self.user_id}/application_credentials", body)
        cred = made["application_credential"]
        return {"id": cred["id"], "name": cred["name"], "secret": cred["secret"]}

    def create_image_service(self) -> str:
        body = {"service": {"type": "image", "name": "glance", "enabled": True}}
        return str(self.post("/services", body)["service"]["id"])
