"""fiware-glancesync.cfg, the server's environment variables and the database URL
(reference 11.1-11.3)."""

from __future__ import annotations

import pytest

from app import create_app
from app.settings import (
    SettingsError,
    database_url,
    flask_config_file,
    load_settings,
    locate,
    read_settings,
)
from glancesync.credentials import keystone_v3_url
from tests.support.settings_files import MINIMAL, write


def test_defaults(tmp_path):
    s = read_settings(write(tmp_path, MINIMAL), "logging.cfg")
    assert s.openstack.connection.keystone_url == "http://ks:5000/v3"
    assert s.openstack.connection.password == "secret%pass"
    assert s.openstack.connection.user_domain_name == "Default"
    assert s.openstack.connection.project_domain_name == "Default"
    assert s.openstack.required_roles == ("admin",)
    assert (s.owner, s.api_info_url, s.status) == (
        "Telefonica I+D",
        "http://docs.glancesync.apiary.io/#",
        "SUPPORTED",
    )
    assert s.version == "2.0.0" and s.updated
    assert (s.host, s.port, s.database_url) == ("0.0.0.0", 8080, "")
    assert (s.workers, s.pidfile, s.loglevel) == (5, "tmp/processes.pid", "info")


def test_every_key_and_old_keys(tmp_path):
    text = """\
[openstack]
KEYSTONE_URL = http://ks:5000/v2.0/
ADM_USER = svc
ADM_PASS = pw
ADM_TENANT_ID = 0123
ADM_TENANT_NAME = ignored-when-id-is-set
USER_DOMAIN_NAME = users
PROJECT_DOMAIN_NAME = projects
REQUIRED_ROLES = admin, glancesync ,
AUTH_API_V2 = old
REGION_LIST_API_V3 = old
[glancesync]
OWNER = me
API_INFO_URL = http://docs
VERSION = 9.9
STATUS = BETA
UPDATED = yesterday
HOST = 127.0.0.1
PORT = 9000
[database]
URL = sqlite:////tmp/x.db
[gunicorn]
WORKERS = 3
PIDFILE = run/g.pid
LOGLEVEL = debug
[http]
SETTINGS_TYPE = old
"""
    s = read_settings(write(tmp_path, text), "l")
    assert s.openstack.connection.keystone_url == "http://ks:5000/v3"
    assert s.openstack.connection.project_id == "0123"
    assert s.openstack.required_roles == ("admin", "glancesync")
    assert (
        s.openstack.connection.user_domain_name,
        s.openstack.connection.project_domain_name,
    ) == ("users", "projects")
    assert (s.owner, s.api_info_url, s.version, s.status, s.updated) == (
        "me",
        "http://docs",
        "9.9",
        "BETA",
        "yesterday",
    )
    assert (s.host, s.port, s.database_url) == ("127.0.0.1", 9000, "sqlite:////tmp/x.db")
    assert (s.workers, s.pidfile, s.loglevel) == (3, "run/g.pid", "debug")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://k:5000/v2.0", "http://k:5000/v3"),
        ("http://k:5000/v2.0/", "http://k:5000/v3"),
        ("http://k:5000", "http://k:5000/v3"),
        ("http://k:5000/v3/", "http://k:5000/v3"),
    ],
)
def test_keystone_url(url, expected):
    assert keystone_v3_url(url) == expected


@pytest.mark.parametrize("key", ["KEYSTONE_URL", "ADM_USER", "ADM_PASS"])
def test_missing_required_key_names_key_section_and_file(tmp_path, key):
    text = "\n".join(line for line in MINIMAL.splitlines() if not line.startswith(key))
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        read_settings(path, "l")
    expected = f"ERROR: Missing required key {key} in section [openstack] of {path}"
    assert str(caught.value) == expected


def test_missing_tenant(tmp_path):
    path = write(tmp_path, MINIMAL.replace("ADM_TENANT_NAME: service\n", ""))
    with pytest.raises(
        SettingsError,
        match=r"ADM_TENANT_ID or ADM_TENANT_NAME in section "
        r"\[openstack\] of ",
    ):
        read_settings(path, "l")


def test_bad_integer_and_bad_file(tmp_path):
    path = write(tmp_path, MINIMAL + "[glancesync]\nPORT = http\n")
    with pytest.raises(SettingsError, match=r"PORT in section \[glancesync\] .* integer"):
        read_settings(path, "l")
    broken = write(tmp_path, "not an ini file", "broken.cfg")
    with pytest.raises(SettingsError, match="broken.cfg"):
        read_settings(broken, "l")


def test_files_are_located_by_environment_or_fiware_dir(tmp_path):
    settings = write(tmp_path, MINIMAL)
    logging_cfg = write(tmp_path, "", "fiware-glancesync-logging.cfg")
    env = {"GLANCESYNC_SETTINGS_FILE": settings, "GLANCESYNC_LOGGING_SETTINGS_FILE": logging_cfg}
    assert load_settings(env, fiware_dir=str(tmp_path / "none")).logging_file == logging_cfg
    assert load_settings({}, fiware_dir=str(tmp_path)).settings_file == settings


def test_missing_files_give_the_readme_messages(tmp_path):
    fiware = str(tmp_path / "fiware.d")
    with pytest.raises(SettingsError) as caught:
        load_settings({}, fiware_dir=fiware)
    assert str(caught.value) == (
        "ERROR: There is neither defined GLANCESYNC_SETTINGS_FILE environment variable\n"
        f"pointing to fiware-glancesync.cfg nor {fiware}/fiware-glancesync.cfg\n"
        "file. Please correct at least one of them to execute the program."
    )
    # No logging file is no error: "" means the packaged one (INFO to stderr).
    env = {"GLANCESYNC_SETTINGS_FILE": write(tmp_path, MINIMAL)}
    assert load_settings(env, fiware_dir=fiware).logging_file == ""


def test_etc_glancesync_comes_before_the_fiware_dir(tmp_path):
    """Issue 24: the variable, then /etc/glancesync/, then 1.7's /etc/fiware.d/."""
    etc, fiware = tmp_path / "glancesync", tmp_path / "fiware.d"
    etc.mkdir()
    fiware.mkdir()
    name = "fiware-glancesync.cfg"
    old = write(fiware, MINIMAL, name)
    found = locate("GLANCESYNC_SETTINGS_FILE", name, {}, str(fiware), etc_dir=str(etc))
    assert found == old
    new = write(etc, MINIMAL, name)
    found = locate("GLANCESYNC_SETTINGS_FILE", name, {}, str(fiware), etc_dir=str(etc))
    assert found == new
    env = {"GLANCESYNC_SETTINGS_FILE": old}
    assert locate("GLANCESYNC_SETTINGS_FILE", name, env, str(fiware), etc_dir=str(etc)) == old


def test_variable_naming_a_missing_file(tmp_path):
    with pytest.raises(SettingsError, match="GLANCESYNC_SETTINGS_FILE points to"):
        load_settings({"GLANCESYNC_SETTINGS_FILE": str(tmp_path / "nope.cfg")})


def test_database_url_order(tmp_path):
    settings = read_settings(write(tmp_path, MINIMAL + "[database]\nURL = sqlite:///cfg.db\n"), "l")
    bare = read_settings(write(tmp_path, MINIMAL, "bare.cfg"), "l")
    env = {"GLANCESYNCAPP_DATABASE_URL": "postgresql://u@h/db"}
    assert database_url(settings, env, "sqlite:///flask.db", "i") == "postgresql+psycopg://u@h/db"
    assert database_url(settings, {}, "sqlite:///flask.db", "i") == "sqlite:///cfg.db"
    assert database_url(bare, {}, "sqlite:///flask.db", "i") == "sqlite:///flask.db"
    folder = tmp_path / "dbdir"
    env = {"GLANCESYNCAPP_DATABASE_PATH": str(folder)}
    assert database_url(bare, env, None, "i") == f"sqlite:///{folder}/glancesyncapi.db"
    instance = tmp_path / "instance"
    assert database_url(bare, {}, None, str(instance)) == f"sqlite:///{instance}/glancesyncapi.db"
    assert instance.is_dir()


def test_flask_config_file(tmp_path):
    assert flask_config_file({}) is None
    (tmp_path / "config.py").write_text("SQLALCHEMY_DATABASE_URI = 'sqlite:///f.db'\n")
    env = {"GLANCESYNCAPP_CONFIG": str(tmp_path)}
    assert flask_config_file(env) == str(tmp_path / "config.py")
    with pytest.raises(SettingsError, match="GLANCESYNCAPP_CONFIG points to"):
        flask_config_file({"GLANCESYNCAPP_CONFIG": str(tmp_path / "missing.py")})


def test_app_uses_the_flask_config_file(tmp_path, server_files):
    (tmp_path / "config.py").write_text(
        f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{tmp_path}/f.db'\nSYNC_WORKERS = 2\n"
    )
    env = {**server_files, "GLANCESYNCAPP_CONFIG": str(tmp_path)}
    app = create_app({"CONFIGURE_LOGGING": False}, environ=env)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/f.db"
    assert app.config["SYNC_WORKERS"] == 2
    app.extensions["glancesync.tasks"].shutdown()


def test_viewer_roles_and_metrics_token(tmp_path):
    """Issue 16: VIEWER_ROLES (default reader, member) and [metrics] TOKEN (default unset)."""
    s = read_settings(write(tmp_path, MINIMAL), "logging.cfg")
    assert s.openstack.viewer_roles == ("reader", "member")
    assert s.metrics_token == ""
    text = MINIMAL + "VIEWER_ROLES = observer ,auditor\n\n[metrics]\nTOKEN = s3cret\n"
    s = read_settings(write(tmp_path, text), "logging.cfg")
    assert s.openstack.viewer_roles == ("observer", "auditor")
    assert s.metrics_token == "s3cret"
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize("value", ["", " , ", ","])
def test_an_empty_required_roles_is_refused(tmp_path, value):
    text = MINIMAL.replace("[openstack]\n", f"[openstack]\nREQUIRED_ROLES = {value}\n")
    with pytest.raises(
        SettingsError, match="REQUIRED_ROLES in section \\[openstack\\].*names no role"
    ):
        read_settings(write(tmp_path, text), "logging.cfg")


def test_gunicorn_and_pool_settings(tmp_path):
    text = MINIMAL + "\n[gunicorn]\nTHREADS = 3\nTIMEOUT = 7\nGRACEFUL_TIMEOUT = 4\n"
    text += "\n[database]\nPOOL_SIZE = 12\n"
    s = read_settings(write(tmp_path, text), "logging.cfg")
    assert (s.threads, s.timeout, s.graceful_timeout, s.pool_size) == (3, 7, 4, 12)
    defaults = read_settings(write(tmp_path, MINIMAL), "logging.cfg")
    assert (defaults.threads, defaults.timeout, defaults.graceful_timeout) == (8, 60, 30)
    with pytest.raises(SettingsError, match="TIMEOUT in section \\[gunicorn\\].*at least 1"):
        read_settings(write(tmp_path, MINIMAL + "\n[gunicorn]\nTIMEOUT = 0\n"), "logging.cfg")
