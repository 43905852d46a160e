"""A small Keystone v3 on loopback for the token-validation tests: it answers the two
calls the service makes (its own password login, and the validation of a caller's
token) the way Keystone does, including its 400/401/404 answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE_PASSWORD = "svc-pass"
SERVICE_TOKEN = "svc-token-0001"
GOOD_TOKEN = "caller-token-0001"
MALFORMED_TOKEN = "malformed"
USER_AGENTS: list[str] = []  # the User-Agent of every request received, in order


def token_body(user: str, roles: list[str]) -> dict:
    domain = {"id": "default", "name": "Default"}
    return {
        "token": {
            "methods": ["password"],
            "issued_at": "2026-01-01T00:00:00.000000Z",
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "user": {"id": f"{user}-id", "name": user, "domain": domain},
            "project": {"id": "p1", "name": "service", "domain": domain},
            "roles": [{"id": f"{role}-id", "name": role} for role in roles],
        }
    }


class Handler(BaseHTTPRequestHandler):
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

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        USER_AGENTS.append(self.headers.get("User-Agent", ""))
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/v3/auth/tokens":
            return self.error(404, "Not Found")
        password = request["auth"]["identity"]["password"]["user"]["password"]
        if password != SERVICE_PASSWORD:
            return self.error(401, "Unauthorized")
        self.answer(201, token_body("glancesync", ["admin"]), SERVICE_TOKEN)

    def do_GET(self) -> None:  # noqa: N802
        USER_AGENTS.append(self.headers.get("User-Agent", ""))
        if self.path.split("?")[0] != "/v3/auth/tokens":
            return self.error(404, "Not Found")
        if self.headers.get("X-Auth-Token") != SERVICE_TOKEN:
            return self.error(401, "Unauthorized")
        subject = self.headers.get("X-Subject-Token", "")
        if subject == MALFORMED_TOKEN:
            return self.error(400, "Bad Request")
        if subject != GOOD_TOKEN:
            return self.error(404, "Not Found")
        self.answer(200, token_body("alice", ["admin"]), subject)


@contextmanager
def fake_keystone() -> Iterator[str]:
    """The base URL (``http://127.0.0.1:<port>``) of a running fake Keystone."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
