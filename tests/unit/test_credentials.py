"""Connection settings of a target (issue 13): ids, application credentials, TLS, interface,
clouds.yaml, and the master's OS_* variables. Error texts are the documented ones."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from glancesync.config import load_config
from glancesync.errors import ConfigError

PASSWORD = "user = u\npassword = pw-secret\nkeystone_url = https://ks/v3\ntenant = t\n"
APP = "application_credential_id = app-id\napplication_credential_secret = app-secret\n"


def load(text: str, environ: dict[str, str] | None = None, path: str = "/etc/test.conf"):
    """The configuration of ``text``; a plain master is added unless the test sets one."""
    environ = environ or {}
    master_given = "[master]" in text or {"OS_AUTH_URL", "OS_CLOUD"} & set(environ)
    text = "[main]\nmaster_region = R\n" + textwrap.dedent(text)
    if not master_given:
        text += "[master]\n" + PASSWORD
    return load_config(text=text, path=path, environ=environ)


def error_of(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(text, environ)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.fixture
def cacert(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


# --------------------------------------------------------------------------- section keys


def test_ids_interface_and_cacert_from_the_section(cacert):
    text = (
        "[master]\nuser = u\npassword = p\nkeystone_url = https://ks/v3\n"
        "project_id = p-id\nuser_domain_id = ud-id\nproject_domain_id = pd-id\n"
        f"interface = internal\ncacert = {cacert}\n"
    )
    master = load(text).master
    assert (
        master.connection.project_id,
        master.connection.user_domain_id,
        master.connection.project_domain_id,
    ) == (
        "p-id",
        "ud-id",
        "pd-id",
    )
    assert (master.connection.interface, master.connection.cacert, master.connection.insecure) == (
        "internal",
        cacert,
        False,
    )
    assert master.connection.verify == cacert


def test_interface_defaults_to_public_and_accepts_the_v2_spelling():
    assert load("[master]\n" + PASSWORD).master.connection.interface == "public"
    assert load(
        "[master]\n" + PASSWORD + "interface = internalURL\n"
    ).master.connection.interface == ("internal")


def test_wrong_interface_names_file_section_and_key():
    assert error_of("[other]\n" + PASSWORD + "interface = private\n") == (
        "/etc/test.conf: [other] interface: invalid interface 'private' "
        "(use public, internal or admin)"
    )


def test_missing_cacert_names_file_section_and_key(tmp_path):
    missing = tmp_path / "nope.pem"
    assert error_of(f"[other]\n{PASSWORD}cacert = {missing}\n") == (
        f"/etc/test.conf: [other] cacert: the CA bundle {missing} does not exist or cannot be read"
    )


def test_insecure_warns_for_every_load():
    config = load("[master]\n" + PASSWORD + "insecure = true\n[other]\n" + PASSWORD)
    assert config.master.connection.insecure and config.master.connection.verify is False
    assert not config.targets["other"].connection.insecure
    assert config.warnings == ["Target master: insecure = true, TLS certificates are not verified"]
    assert error_of("[other]\n" + PASSWORD + "insecure = maybe\n") == (
        "/etc/test.conf: [other] insecure: invalid boolean value 'maybe' (use true/false)"
    )


# --------------------------------------------------------------------------- app credentials


def test_application_credential_needs_no_password_nor_project():
    other = load("[other]\nkeystone_url = https://ks/v3\n" + APP).targets["other"]
    conn = other.connection
    assert conn.uses_application_credential
    assert (conn.application_credential_id, conn.application_credential_secret) == (
        "app-id",
        "app-secret",
    )


def test_application_credential_wins_over_a_complete_password():
    other = load("[other]\n" + PASSWORD + APP).targets["other"]
    assert other.connection.uses_application_credential
    assert other.connection.password == ""  # the password is not used, so it is not kept either


def test_application_credential_by_name_with_the_user():
    text = "[other]\nkeystone_url = https://ks/v3\nuser = u\nuser_domain_id = d\n"
    text += "application_credential_name = sync\napplication_credential_secret = s\n"
    conn = load(text).targets["other"].connection
    assert (conn.application_credential_name, conn.user, conn.user_domain_id) == ("sync", "u", "d")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            "application_credential_id = x\n",
            "/etc/test.conf: [other] application_credential_id: an application credential "
            "needs application_credential_secret (with application_credential_id, or "
            "application_credential_name and user)",
        ),
        (
            "application_credential_secret = x\n",
            "/etc/test.conf: [other] application_credential_secret: "
            "application_credential_secret needs application_credential_id, "
            "or application_credential_name and user",
        ),
        (
            "application_credential_name = n\napplication_credential_secret = x\n",
            "/etc/test.conf: [other] application_credential_name: application_credential_name "
            "needs user: the name is only unique for its owner",
        ),
    ],
)
def test_incomplete_application_credential(keys, message):
    assert error_of("[other]\nkeystone_url = https://ks/v3\n" + keys) == message


def test_application_credential_without_keystone_url():
    assert error_of("[other]\n" + APP) == (
        "/etc/test.conf: [other] keystone_url: keystone_url is mandatory "
        "(or auth.auth_url in the cloud's clouds.yaml entry)"
    )


def test_nothing_at_all_keeps_the_old_message():
    assert error_of("[other]\ninterface = internal\n") == (
        "/etc/test.conf: [other]: A credential parameter is mandatory for each target "
        "(or the set: user, password, tenant, keystone_url)"
    )


def test_secrets_are_not_in_reprs():
    config = load("[master]\n" + PASSWORD + APP)
    for shown in (repr(config.master), repr(config.master.connection)):
        assert "app-secret" not in shown
    assert "pw-secret" not in repr(config.master.connection)


# --------------------------------------------------------------------------- environment


def test_master_environment_application_credential():
    env = {
        "OS_AUTH_TYPE": "v3applicationcredential",
        "OS_AUTH_URL": "https://ks/v3",
        "OS_APPLICATION_CREDENTIAL_ID": "env-id",
        "OS_APPLICATION_CREDENTIAL_SECRET": "env-secret",
        "OS_INTERFACE": "internal",
    }
    master = load("", env).master
    assert (master.connection.application_credential_id, master.connection.interface) == (
        "env-id",
        "internal",
    )
    assert load("[other]\n" + PASSWORD, env).targets["other"].connection.interface == "public"


def test_master_environment_ids_and_cacert(cacert):
    env = {
        "OS_AUTH_URL": "https://ks/v3",
        "OS_USERNAME": "u",
        "OS_PASSWORD": "p",
        "OS_PROJECT_ID": "pid",
        "OS_USER_DOMAIN_ID": "ud",
        "OS_PROJECT_DOMAIN_ID": "pd",
        "OS_CACERT": cacert,
    }
    master = load("", env).master
    assert (
        master.connection.project_id,
        master.connection.user_domain_id,
        master.connection.project_domain_id,
    ) == (
        "pid",
        "ud",
        "pd",
    )
    assert master.connection.cacert == cacert


def test_auth_type_application_credential_requires_its_secret():
    env = {"OS_AUTH_TYPE": "v3applicationcredential", "OS_AUTH_URL": "https://ks/v3"}
    env["OS_APPLICATION_CREDENTIAL_ID"] = "x"
    assert error_of("", env) == (
        "environment: [master] OS_APPLICATION_CREDENTIAL_ID: an application credential needs "
        "application_credential_secret (with application_credential_id, or "
        "application_credential_name and user)"
    )
    assert error_of("", dict(env, OS_AUTH_TYPE="token")) == (
        "environment: [master] OS_AUTH_TYPE: auth type 'token' is not supported "
        "(use password or v3applicationcredential)"
    )


def test_an_openrc_auth_type_does_not_hide_the_files_application_credential():
    env = {"OS_AUTH_TYPE": "password", "OS_USERNAME": "u", "OS_PASSWORD": "p"}
    master = load("[master]\nkeystone_url = https://ks/v3\n" + APP, env).master
    assert master.connection.application_credential_id == "app-id"


def test_section_keys_win_over_the_environment(cacert):
    env = {"OS_CACERT": "/nowhere.pem", "OS_INTERFACE": "admin"}
    master = load(f"[master]\n{PASSWORD}cacert = {cacert}\ninterface = internal\n", env).master
    assert (master.connection.cacert, master.connection.interface) == (cacert, "internal")


# --------------------------------------------------------------------------- clouds.yaml


@pytest.fixture
def clouds(tmp_path: Path, cacert: str) -> dict[str, str]:
    """A clouds.yaml (mode 600) and the environment that points at it."""
    data = {
        "clouds": {
            "tls": {
                "auth": {
                    "auth_url": "https://ks2/v3",
                    "username": "cu",
                    "password": "cloud-secret",
                    "project_id": "cpid",
                    "user_domain_id": "cud",
                    "project_domain_id": "cpd",
                },
                "cacert": cacert,
                "interface": "internal",
            },
            "app": {
                "auth_type": "v3applicationcredential",
                "auth": {
                    "auth_url": "https://ks3/v3",
                    "application_credential_id": "cid",
                    "application_credential_secret": "csecret",
                },
                "verify": False,
            },
        }
    }
    path = tmp_path / "clouds.yaml"
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return {"OS_CLIENT_CONFIG_FILE": str(path)}


def test_target_given_only_by_its_cloud(clouds, cacert):
    config = load("[other]\ncloud = tls\n", clouds)
    other = config.targets["other"]
    assert (other.connection.keystone_url, other.connection.user, other.connection.password) == (
        "https://ks2/v3",
        "cu",
        "cloud-secret",
    )
    assert (
        other.connection.project_id,
        other.connection.user_domain_id,
        other.connection.project_domain_id,
    ) == (
        "cpid",
        "cud",
        "cpd",
    )
    assert (other.connection.interface, other.connection.cacert, other.cloud) == (
        "internal",
        cacert,
        "tls",
    )
    assert config.warnings == []


def test_application_credential_cloud_and_verify_false(clouds):
    config = load("[other]\ncloud = app\n", clouds)
    conn = config.targets["other"].connection
    assert (conn.application_credential_id, conn.insecure) == ("cid", True)
    assert "Target other: insecure = true, TLS certificates are not verified" in config.warnings


def test_section_keys_win_over_the_cloud(clouds):
    other = load("[other]\ncloud = tls\ninterface = public\nuser = su\n", clouds).targets["other"]
    assert (other.connection.interface, other.connection.user, other.connection.password) == (
        "public",
        "su",
        "cloud-secret",
    )


def test_os_cloud_for_the_master_only(clouds):
    env = dict(clouds, OS_CLOUD="tls")
    config = load("[other]\n" + PASSWORD, env)
    assert config.master.cloud == "tls" and config.master.connection.user == "cu"
    assert config.targets["other"].cloud == ""


def test_unknown_cloud_names_file_section_and_key(clouds):
    message = error_of("[other]\ncloud = nowhere\n", clouds)
    assert message.startswith(
        "/etc/test.conf: [other] cloud: cloud nowhere is not defined in any clouds.yaml "
        f"(searched: {clouds['OS_CLIENT_CONFIG_FILE']}, "
    )


def test_world_readable_clouds_yaml_with_secrets_warns(clouds):
    path = clouds["OS_CLIENT_CONFIG_FILE"]
    os.chmod(path, 0o644)
    assert load("[other]\ncloud = tls\n", clouds).warnings == [
        f"Configuration file {path} holds credentials and is readable by other users; chmod 600 it"
    ]


def test_wrong_value_in_the_cloud_names_the_clouds_yaml(clouds, tmp_path):
    path = Path(clouds["OS_CLIENT_CONFIG_FILE"])
    data = json.loads(path.read_text())
    data["clouds"]["tls"]["interface"] = "sideways"
    path.write_text(json.dumps(data))
    assert error_of("[other]\ncloud = tls\n", clouds) == (
        f"{path}: [tls] interface: invalid interface 'sideways' (use public, internal or admin)"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://k:5000/v2.0/", "http://k:5000/v3"),
        ("https://k/identity", "https://k/identity/v3"),
        ("https://k/identity/v3/", "https://k/identity/v3"),
        ("https://k/v3.14", "https://k/v3.14"),  # a version the user chose is kept
    ],
)
def test_keystone_v3_url_is_shared_by_cli_service_and_backend(url, expected):
    from glancesync.credentials import keystone_v3_url

    assert keystone_v3_url(url) == expected


def test_one_boolean_spelling_for_config_and_connection():
    from glancesync.credentials import parse_bool

    assert [parse_bool(t) for t in ("Yes", " on ", "1", "FALSE", "off", "0")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    with pytest.raises(ValueError, match=r"invalid boolean value 'perhaps' \(use true/false\)"):
        parse_bool("perhaps")
