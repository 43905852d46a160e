"""[openstack] of fiware-glancesync.cfg (issue 13): CLOUD, application credential, CACERT,
INSECURE, INTERFACE; ADM_USER/ADM_PASS are not needed with an application credential."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.settings import SettingsError, read_settings

APP = "[openstack]\nKEYSTONE_URL = https://ks:5000\n"
APP += "APPLICATION_CREDENTIAL_ID = app-id\nAPPLICATION_CREDENTIAL_SECRET = app-secret\n"


def read(tmp_path: Path, text: str, environ: dict[str, str] | None = None):
    path = tmp_path / "fiware-glancesync.cfg"
    path.write_text(text)
    return read_settings(str(path), "logging.cfg", environ or {}).openstack


def error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(SettingsError) as info:
        read(tmp_path, text, environ)
    return str(info.value)


def test_application_credential_without_adm_user(tmp_path):
    openstack = read(tmp_path, APP + "INTERFACE = internal\n")
    conn = openstack.connection
    assert conn.uses_application_credential and conn.application_credential_id == "app-id"
    assert (openstack.connection.keystone_url, openstack.connection.interface) == (
        "https://ks:5000/v3",
        "internal",
    )
    assert "app-secret" not in repr(openstack)


def test_without_application_credential_adm_user_is_still_required(tmp_path):
    path = tmp_path / "fiware-glancesync.cfg"
    assert error(tmp_path, "[openstack]\nKEYSTONE_URL = http://ks\n") == (
        f"ERROR: Missing required key ADM_USER in section [openstack] of {path}"
    )


def test_cacert_and_insecure(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert read(tmp_path, APP + f"CACERT = {ca}\n").connection.verify == str(ca)
    assert read(tmp_path, APP + "INSECURE = true\n").connection.verify is False
    path = tmp_path / "fiware-glancesync.cfg"
    assert error(tmp_path, APP + "CACERT = /no/ca.pem\n") == (
        f"ERROR: {path}: [openstack] CACERT: the CA bundle /no/ca.pem does not exist "
        "or cannot be read"
    )
    assert error(tmp_path, APP + "INTERFACE = side\n") == (
        f"ERROR: {path}: [openstack] INTERFACE: invalid interface 'side' "
        "(use public, internal or admin)"
    )


def test_cloud_from_clouds_yaml_with_keys_on_top(tmp_path):
    clouds = tmp_path / "clouds.yaml"
    cloud = {
        "auth_type": "v3applicationcredential",
        "auth": {
            "auth_url": "https://cloud-ks/v3",
            "application_credential_id": "cid",
            "application_credential_secret": "csecret",
        },
        "interface": "internal",
    }
    clouds.write_text(json.dumps({"clouds": {"svc": cloud}}))
    clouds.chmod(0o600)
    env = {"OS_CLIENT_CONFIG_FILE": str(clouds)}
    openstack = read(tmp_path, "[openstack]\nCLOUD = svc\nINTERFACE = admin\n", env)
    assert (openstack.connection.keystone_url, openstack.connection.interface) == (
        "https://cloud-ks/v3",
        "admin",
    )
    assert openstack.connection.application_credential_id == "cid"
    assert "csecret" not in repr(openstack)
    message = error(tmp_path, "[openstack]\nCLOUD = other\n", env)
    assert message.startswith(
        f"ERROR: {tmp_path / 'fiware-glancesync.cfg'}: [openstack] CLOUD: cloud other is not "
        "defined in any clouds.yaml"
    )


def test_insecure_service_warns_once_and_builds_an_unverified_session(tmp_path, caplog):
    from app.auth import INSECURE_WARNING, KeystoneValidator

    validator = KeystoneValidator(read(tmp_path, APP + "INSECURE = true\n"))
    with caplog.at_level("WARNING", logger="GlanceSync-API"):
        client = validator._keystone()
        validator._keystone()
    assert client.session.verify is False
    assert [r.getMessage() for r in caplog.records] == [INSECURE_WARNING]
