"""A small Keystone v3 on loopback for the token-validation tests: it answers the calls
keystonemiddleware's auth_token makes (version discovery, the service's own password
login, the validation of a caller's token) and the revocation of a token, the way
Keystone does, including its 400/401/404 answers. It counts the validations, so the
tests can see auth_token's cache."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE_PASSWORD = "svc-pass"
SERVICE_TOKEN = "svc-token-0001"
SERVICE_PROJECT = "p1"
GOOD_TOKEN = "caller-token-0001"
OTHER_PROJECT_ADMIN_TOKEN = "caller-token-0002"
MALFORMED_TOKEN = "malformed"


def token_body(user: str, roles: list[str], project: str = SERVICE_PROJECT, url: str = "") -> dict:
    domain = {"id": "default", "name": "Default"}
    token = {
        "methods": ["password"],
        "issued_at": "2026-01-01T00:00:00.000000Z",
        "expires_at": "2099-01-01T00:00:00.000000Z",
        "user": {"id": f"{user}-id", "name": user, "domain": domain},
        "project": {"id": project, "name": project, "domain": domain},
        "roles": [{"id": f"{role}-id", "name": role} for role in roles],
    }
    if url:  # the service's own token: the catalog names this Keystone
        endpoints = [
            {"id": f"e-{i}", "interface": i, "region": "RegionOne", "url": f"{url}/v3"}
            for i in ("public", "internal", "admin")
        ]
        token["catalog"] = [{"type": "identity", "name": "keystone", "endpoints": endpoints}]
    return {"token": token}


class Keystone(ThreadingHTTPServer):
    """The server and what it knows: valid caller tokens, revoked ones, call counts."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.tokens: dict[str, dict] = {
            GOOD_TOKEN: token_body("alice", ["admin"]),
            OTHER_PROJECT_ADMIN_TOKEN: token_body("mallory", ["admin"], "customer"),
        }
        self.validations: dict[str, int] = {}
        self.revoked: list[str] = []
        self.user_agents: list[str] = []  # the User-Agent of every request, in order


class Handler(BaseHTTPRequestHandler):
    server: Keystone

    def log_message(self, *args) -> None:
        pass

    def answer(self, code: int, body: dict, token: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if token:
            self.send_header("X-Subject-Token", token)
        self.end_headers()
        self.wfile.write(data)

    def error(self, code: int, title: str) -> None:
        self.answer(code, {"error": {"code": code, "title": title, "message": title}})

    def versions(self) -> None:
        link = [{"rel": "self", "href": f"{self.server.url}/v3/"}]
        version = {"id": "v3.14", "status": "stable", "links": link}
        media = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
        version["media-types"] = media
        if self.path.rstrip("/") == "/v3":
            return self.answer(200, {"version": version})
        self.answer(300, {"versions": {"values": [version]}})

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.server.user_agents.append(self.headers.get("User-Agent", ""))
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/v3/auth/tokens":
            return self.error(404, "Not Found")
        password = request["auth"]["identity"]["password"]["user"]["password"]
        if password != SERVICE_PASSWORD:
            return self.error(401, "Unauthorized")
        body = token_body("glancesync", ["admin", "service"], url=self.server.url)
        self.answer(201, body, SERVICE_TOKEN)

    def do_DELETE(self) -> None:  # noqa: N802
        self.server.user_agents.append(self.headers.get("User-Agent", ""))
        subject = self.headers.get("X-Subject-Token", "")
        if self.server.tokens.pop(subject, None) is None:
            return self.error(404, "Not Found")
        self.server.revoked.append(subject)
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        self.server.user_agents.append(self.headers.get("User-Agent", ""))
        path = self.path.split("?")[0]
        if path.rstrip("/") in ("", "/v3"):
            return self.versions()
        if path != "/v3/auth/tokens":
            return self.error(404, "Not Found")
        if self.headers.get("X-Auth-Token") != SERVICE_TOKEN:
            return self.error(401, "Unauthorized")
        subject = self.headers.get("X-Subject-Token", "")
        counts = self.server.validations
        counts[subject] = counts.get(subject, 0) + 1
        if subject == MALFORMED_TOKEN:
            return self.error(400, "Bad Request")
        if subject not in self.server.tokens:
            return self.error(404, "Not Found")
        self.answer(200, self.server.tokens[subject], subject)


@contextmanager
def fake_keystone() -> Iterator[Keystone]:
    """A running fake Keystone (``.url`` is ``http://127.0.0.1:<port>``)."""
    server = Keystone()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
