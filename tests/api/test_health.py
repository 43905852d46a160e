"""GET /healthcheck (issue 24 item 4): what a load balancer polls. No token; 200 while the
database answers, 503 while it does not or while the ``[glancesync] DRAIN_FILE`` exists
(the operator takes the instance out before an upgrade)."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.exc import OperationalError

from app.models import db
from app.settings import load_settings
from tests.support.service_files import SERVER_CFG


def drain(app, path) -> None:
    app.config["SETTINGS"] = replace(app.config["SETTINGS"], drain_file=str(path))


def test_healthy_without_a_token(client):
    for headers in ({}, {"X-Auth-Token": "garbage"}):
        response = client.get("/healthcheck", headers=headers)
        assert response.status_code == 200
        assert response.get_json() == {"status": "ok", "database": "ok"}


def test_draining_while_the_drain_file_exists(app, client, tmp_path):
    flag = tmp_path / "drain"
    drain(app, flag)
    assert client.get("/healthcheck").status_code == 200
    flag.touch()
    response = client.get("/healthcheck")
    assert response.status_code == 503
    assert response.get_json() == {"status": "draining", "database": "ok"}
    flag.unlink()
    assert client.get("/healthcheck").status_code == 200


def test_unavailable_when_the_database_does_not_answer(app, client, monkeypatch):
    def broken(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    with monkeypatch.context() as patch:  # undone before the fixture empties the table
        patch.setattr(db.session, "execute", broken)
        response = client.get("/healthcheck")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "unreachable"}


def test_drain_file_setting(tmp_path):
    settings = tmp_path / "fiware-glancesync.cfg"
    text = SERVER_CFG.format(password="pw")
    settings.write_text(text)
    env = {"GLANCESYNC_SETTINGS_FILE": str(settings)}
    assert load_settings(env, fiware_dir=str(tmp_path)).drain_file == ""
    settings.write_text(text.replace("[glancesync]\n", "[glancesync]\nDRAIN_FILE = /run/d\n"))
    assert load_settings(env, fiware_dir=str(tmp_path)).drain_file == "/run/d"
