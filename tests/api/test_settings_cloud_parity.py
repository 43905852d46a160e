"""The CLI and the REST service sign in the same way from one clouds.yaml cloud.

Both read the cloud through ``glancesync.credentials``; this test catches a connection
key that one of them reads and the other drops (the domain ids did, once: the service
signed in to domain "Default"). A recording Keystone on loopback keeps the body of every
POST /v3/auth/tokens, so the assertion is on what Keystone really receives.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.auth import KeystoneValidator
from app.settings import read_settings
from glancesync.backends import make_backends
from glancesync.config import load_config

TOKEN = {
    "token": {
        "methods": ["password"],
        "issued_at": "2026-01-01T00:00:00.000000Z",
        "expires_at": "2099-01-01T00:00:00.000000Z",
        "user": {"id": "u1", "name": "svc", "domain": {"id": "udom-id", "name": "users"}},
        "project": {"id": "p1", "name": "service", "domain": {"id": "pdom-id", "name": "p"}},
        "roles": [{"id": "r1", "name": "admin"}],
        "catalog": [],
    }
}


class RecordingKeystone(BaseHTTPRequestHandler):
    """Answers every sign-in with a token, every validation with 404; records sign-ins."""

    requests: list[dict] = []

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/v3/auth/tokens":
            self.requests.append(json.loads(body))
        self.reply(201, TOKEN)

    def do_GET(self) -> None:  # noqa: N802
        self.reply(404, {"error": {"code": 404, "title": "Not Found", "message": "nope"}})

    def reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Subject-Token", "tok-1")
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def keystone() -> Iterator[tuple[str, list[dict]]]:
    recorded: list[dict] = []
    handler = type("Handler", (RecordingKeystone,), {"requests": recorded})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorded
    finally:
        server.shutdown()
        server.server_close()


def clouds_yaml(folder: Path, auth_url: str) -> dict[str, str]:
    """One cloud with domain ids and no domain names; the environment that finds it."""
    auth = {
        "auth_url": auth_url + "/v3",
        "username": "svc",
        "password": "svc-secret",
        "project_name": "service",
        "user_domain_id": "udom-id",
        "project_domain_id": "pdom-id",
    }
    path = folder / "clouds.yaml"
    path.write_text(json.dumps({"clouds": {"parity": {"auth": auth}}}))
    path.chmod(0o600)
    return {"OS_CLIENT_CONFIG_FILE": str(path)}


def test_cli_and_service_send_the_same_sign_in(tmp_path, keystone):
    url, recorded = keystone
    environ = clouds_yaml(tmp_path, url)

    config = load_config("[main]\nmaster_region = R\n[master]\ncloud = parity\n", environ=environ)
    assert make_backends(config, environ)["master"].regions() == []
    cfg = tmp_path / "fiware-glancesync.cfg"
    cfg.write_text("[openstack]\nCLOUD = parity\n")
    settings = read_settings(str(cfg), "logging.cfg", environ)
    assert KeystoneValidator(settings.openstack).validate("caller-token") is None

    cli, service = recorded
    assert service == cli
    identity = cli["auth"]["identity"]["password"]["user"]
    assert identity["domain"] == {"id": "udom-id"}
    assert cli["auth"]["scope"]["project"] == {"name": "service", "domain": {"id": "pdom-id"}}
