"""How a target reaches its cloud: credential, TLS and endpoint interface (issue 13).

The settings of one connection come from three layers, looked up field by field:

1. the keys of the target's section (the INI file, ``[DEFAULT]``, ``--config``);
2. the cloud named by ``cloud`` (clouds.yaml and secure.yaml, read with openstacksdk's
   own loader, so every file location and key spelling openstacksdk accepts works);
3. for the master target only, the ``OS_*`` environment variables.

A section key wins over the cloud's value; the environment only fills what is still
missing. An application credential wins over a password when both are complete.
Resolution is pure: it takes plain mappings and returns a ``Connection`` or raises a
``CredentialError`` naming the setting to blame; ``config.py`` turns that into the
one-line ``ERROR:`` of BEHAVIOUR.md 2.1.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

INTERFACES = ("public", "internal", "admin")
APP_CREDENTIAL_AUTH = frozenset({"v3applicationcredential", "applicationcredential"})
PASSWORD_AUTH = frozenset({"password", "v3password"})

# Keys of a target section added by issue 13 (config.py adds them to TARGET_OPTIONS).
CONNECTION_OPTIONS = frozenset(
    {
        "cloud",
        "cacert",
        "insecure",
        "interface",
        "user_domain_id",
        "project_domain_id",
        "project_id",
        "application_credential_id",
        "application_credential_name",
        "application_credential_secret",
    }
)
SECRET_FIELDS = ("password", "application_credential_secret")

# Master target: field -> environment variables, first one set wins (BEHAVIOUR.md 2.5).
ENVIRONMENT = {
    "user": ("OS_USERNAME",),
    "password": ("OS_PASSWORD",),
    "keystone_url": ("OS_AUTH_URL",),
    "tenant": ("OS_TENANT_NAME", "OS_PROJECT_NAME"),
    "project_id": ("OS_PROJECT_ID", "OS_TENANT_ID"),
    "user_domain_name": ("OS_USER_DOMAIN_NAME",),
    "project_domain_name": ("OS_PROJECT_DOMAIN_NAME",),
    "user_domain_id": ("OS_USER_DOMAIN_ID",),
    "project_domain_id": ("OS_PROJECT_DOMAIN_ID",),
    "application_credential_id": ("OS_APPLICATION_CREDENTIAL_ID",),
    "application_credential_name": ("OS_APPLICATION_CREDENTIAL_NAME",),
    "application_credential_secret": ("OS_APPLICATION_CREDENTIAL_SECRET",),
    "cacert": ("OS_CACERT",),
    "insecure": ("OS_INSECURE",),
    "interface": ("OS_INTERFACE",),
    "auth_type": ("OS_AUTH_TYPE",),
    "cloud": ("OS_CLOUD",),
}

# clouds.yaml (as openstacksdk normalises it) -> field; "auth." keys are under ``auth``.
CLOUD_KEYS = {
    "auth.auth_url": "keystone_url",
    "auth.username": "user",
    "auth.password": "password",
    "auth.project_name": "tenant",
    "auth.project_id": "project_id",
    "auth.user_domain_name": "user_domain_name",
    "auth.user_domain_id": "user_domain_id",
    "auth.project_domain_name": "project_domain_name",
    "auth.project_domain_id": "project_domain_id",
    "auth.application_credential_id": "application_credential_id",
    "auth.application_credential_name": "application_credential_name",
    "auth.application_credential_secret": "application_credential_secret",
    "cacert": "cacert",
    "interface": "interface",
    "auth_type": "auth_type",
}

NO_CLOUD = "cloud {name} is not defined in any clouds.yaml (searched: {files})"
CLOUDS_UNREADABLE = "cannot read the clouds.yaml files: {reason}"
BAD_INTERFACE = "invalid interface {value!r} (use public, internal or admin)"
NO_CACERT = "the CA bundle {path} does not exist or cannot be read"
BAD_AUTH_TYPE = "auth type {value!r} is not supported (use password or v3applicationcredential)"
APP_NO_SECRET = (
    "an application credential needs application_credential_secret "
    "(with application_credential_id, or application_credential_name and user)"
)
APP_NO_ID = (
    "application_credential_secret needs application_credential_id, "
    "or application_credential_name and user"
)
APP_NAME_NO_USER = "application_credential_name needs user: the name is only unique for its owner"
NO_KEYSTONE_URL = "keystone_url is mandatory (or auth.auth_url in the cloud's clouds.yaml entry)"
READABLE_CLOUDS = (
    "Configuration file {path} holds credentials and is readable by other users; chmod 600 it"
)


class CredentialError(Exception):
    """A wrong combination; ``setting`` is the value to blame (None: nothing was set)."""

    def __init__(self, problem: str, setting: Setting | None = None, key: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.setting = setting
        self.key = key  # the key to name when nothing was set


@dataclass(frozen=True)
class Setting:
    """One raw value and where it came from, for error messages."""

    value: str
    source: str  # a file path, "--config" or "environment"
    section: str  # the INI section, or the cloud name of a clouds.yaml value
    key: str  # the key as written there (or the environment variable)


@dataclass(frozen=True)
class Connection:
    """Everything keystoneauth needs to reach one cloud (never printed with its secrets)."""

    keystone_url: str
    user: str = ""
    password: str = field(default="", repr=False)
    tenant: str = ""
    project_id: str = ""
    user_domain_name: str = "Default"
    user_domain_id: str = ""
    project_domain_name: str = "Default"
    project_domain_id: str = ""
    application_credential_id: str = ""
    application_credential_name: str = ""
    application_credential_secret: str = field(default="", repr=False)
    cacert: str = ""
    insecure: bool = False
    interface: str = "public"

    @property
    def uses_application_credential(self) -> bool:
        return bool(self.application_credential_secret)

    @property
    def verify(self) -> bool | str:
        """requests' ``verify``: False when insecure, else the CA bundle or the system's."""
        if self.insecure:
            return False
        return self.cacert or True

    def secrets(self) -> list[str]:
        return [s for s in (self.password, self.application_credential_secret) if s]


# --------------------------------------------------------------------------- layers


def environment_layer(environ: Mapping[str, str], section: str) -> dict[str, Setting]:
    """The master's ``OS_*`` variables as settings (first variable set wins)."""
    layer = {}
    for name, variables in ENVIRONMENT.items():
        for variable in variables:
            value = environ.get(variable, "").strip()
            if value:
                layer[name] = Setting(value, "environment", section, variable)
                break
    return layer


def cloud_layer(cloud: Setting, environ: Mapping[str, str]) -> tuple[dict[str, Setting], list[str]]:
    """The fields of the named cloud and the permission warnings of its files.

    openstacksdk reads the files; its environment handling is switched off so that only
    ``environ`` (``OS_CLIENT_CONFIG_FILE``, ``OS_CLIENT_SECURE_FILE``) decides which
    files are read, and no ``OS_*`` value of another cloud leaks in.
    """
    from openstack import exceptions
    from openstack.config import loader

    files = _with_override(loader.CONFIG_FILES, environ.get("OS_CLIENT_CONFIG_FILE"))
    secure = _with_override(loader.SECURE_FILES, environ.get("OS_CLIENT_SECURE_FILE"))
    try:
        sdk = loader.OpenStackConfig(
            config_files=files, secure_files=secure, vendor_files=[], load_envvars=False
        )
        names = sdk.get_cloud_names() if sdk.config_filename else []
        if cloud.value not in names:
            shown = ", ".join(path for path in files if path)
            raise CredentialError(NO_CLOUD.format(name=cloud.value, files=shown), cloud)
        with warnings.catch_warnings():  # openstacksdk's notes about its own future
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            region = sdk.get_one(cloud=cloud.value, validate=False)
    except exceptions.ConfigException as exc:
        reason = " ".join(str(exc).split())
        raise CredentialError(CLOUDS_UNREADABLE.format(reason=reason), cloud) from None
    raw = sdk.cloud_config["clouds"].get(cloud.value, {})
    layer = _cloud_fields(region.config, raw, sdk.config_filename or "", cloud.value)
    readable = [
        READABLE_CLOUDS.format(path=path)
        for path in (sdk.config_filename, sdk.secure_config_filename)
        if path and _holds_secret(path, cloud.value) and _readable_by_others(path)
    ]
    return layer, readable


def _with_override(files: list[str], override: str | None) -> list[str]:
    return [override, *files] if override else list(files)


def _cloud_fields(
    config: Mapping[str, Any], raw: Mapping[str, Any], path: str, name: str
) -> dict[str, Setting]:
    """Normalised values; TLS and interface only when the entry sets them (not defaults)."""
    layer: dict[str, Setting] = {}
    auth = config.get("auth") or {}
    for key, name_of_field in CLOUD_KEYS.items():
        value = auth.get(key[5:]) if key.startswith("auth.") else config.get(key)
        if key in ("cacert", "interface") and key not in raw and "endpoint_type" not in raw:
            continue
        if key == "auth_type" and "auth_type" not in raw:
            continue
        if value not in (None, ""):
            layer[name_of_field] = Setting(str(value), path, name, key)
    if ("verify" in raw or "insecure" in raw) and config.get("verify") is False:
        layer["insecure"] = Setting("true", path, name, "verify")
    return layer


def _holds_secret(path: str, cloud: str) -> bool:
    """True if the file's entry for ``cloud`` has a password or an application secret."""
    import yaml

    try:
        with open(path, encoding="utf-8") as stream:
            data = yaml.safe_load(stream) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    entry = (data.get("clouds") or {}).get(cloud) or {}
    auth = entry.get("auth") or {} if isinstance(entry, dict) else {}
    return isinstance(auth, dict) and any(auth.get(key) for key in SECRET_FIELDS)


def _readable_by_others(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) and bool(mode & (stat.S_IRGRP | stat.S_IROTH))


# --------------------------------------------------------------------------- resolution


def resolve(layers: list[Mapping[str, Setting]], defaults_missing: MissingTexts) -> Connection:
    """The connection of one target from its layers, highest precedence first."""

    def get(name: str) -> Setting | None:
        for layer in layers:
            if name in layer:
                return layer[name]
        return None

    def text(name: str) -> str:
        setting = get(name)
        return setting.value if setting else ""

    auth_type = get("auth_type")
    kind = _auth_kind(auth_type)
    app = _application_credential(get, kind)
    if app is None:
        _check_password(get, defaults_missing)
    url = get("keystone_url")
    if url is None:
        raise CredentialError(defaults_missing.keystone_url, key=defaults_missing.keystone_url_key)
    return Connection(
        keystone_url=url.value,
        user=text("user"),
        password="" if app else text("password"),
        tenant="" if app else text("tenant"),
        project_id="" if app else text("project_id"),
        user_domain_name=text("user_domain_name") or "Default",
        user_domain_id=text("user_domain_id"),
        project_domain_name=text("project_domain_name") or "Default",
        project_domain_id=text("project_domain_id"),
        application_credential_id=app[0] if app else "",
        application_credential_name=app[1] if app else "",
        application_credential_secret=app[2] if app else "",
        cacert=_cacert(get("cacert")),
        insecure=_insecure(get("insecure")),
        interface=_interface(get("interface")),
    )


@dataclass(frozen=True)
class MissingTexts:
    """The messages for a missing password field (the master's name the variables)."""

    credential: str  # non-master: nothing complete
    fields: Mapping[str, str] = field(default_factory=dict)  # master: per missing field
    keystone_url: str = NO_KEYSTONE_URL
    keystone_url_key: str = "keystone_url"


def _auth_kind(setting: Setting | None) -> str:
    """``app``, ``password`` or empty (undecided: an application credential wins if complete)."""
    if setting is None:
        return ""
    value = setting.value.strip().lower()
    if value in APP_CREDENTIAL_AUTH:
        return "app"
    if value in PASSWORD_AUTH:
        return "password"
    raise CredentialError(BAD_AUTH_TYPE.format(value=setting.value), setting)


Lookup = Callable[[str], "Setting | None"]


def _application_credential(get: Lookup, kind: str) -> tuple[str, str, str] | None:
    """(id, name, secret) when an application credential is to be used, else None."""
    if kind == "password":
        return None
    app_id = get("application_credential_id")
    name = get("application_credential_name")
    secret = get("application_credential_secret")
    if app_id is None and name is None and secret is None and kind != "app":
        return None
    complete = secret is not None and (app_id is not None or (name and get("user")))
    if complete:
        assert secret is not None
        if app_id is not None:
            return app_id.value, "", secret.value
        return "", name.value, secret.value
    if kind != "app" and _password_complete(get):
        return None  # a partial application credential next to a complete password
    if secret is None:
        raise CredentialError(APP_NO_SECRET, app_id or name, key="application_credential_secret")
    if name is not None:
        raise CredentialError(APP_NAME_NO_USER, name)
    raise CredentialError(APP_NO_ID, secret)


def _password_complete(get: Lookup) -> bool:
    return bool(get("user") and get("password") and (get("tenant") or get("project_id")))


def _check_password(get: Lookup, missing: MissingTexts) -> None:
    """A complete password credential, or the error of BEHAVIOUR.md 2.4 / 2.5."""
    if not missing.fields:
        if not (_password_complete(get) and get("keystone_url")):
            raise CredentialError(missing.credential)
        return
    needed = {
        "user": get("user"),
        "password": get("password"),
        "keystone_url": get("keystone_url"),
        "tenant": get("tenant") or get("project_id"),
    }
    for name, setting in needed.items():
        if setting is None:
            raise CredentialError(missing.fields[name])


def _cacert(setting: Setting | None) -> str:
    if setting is None:
        return ""
    path = os.path.expanduser(setting.value)
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise CredentialError(NO_CACERT.format(path=setting.value), setting)
    return path


def _insecure(setting: Setting | None) -> bool:
    if setting is None:
        return False
    value = setting.value.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise CredentialError(f"invalid boolean value {setting.value!r} (use true/false)", setting)


def _interface(setting: Setting | None) -> str:
    if setting is None:
        return "public"
    value = setting.value.strip().lower()
    value = value[:-3] if value.endswith("url") else value  # publicURL, the v2 spelling
    if value not in INTERFACES:
        raise CredentialError(BAD_INTERFACE.format(value=setting.value), setting)
    return value


# --------------------------------------------------------------------------- keystoneauth


def auth_plugin(conn: Connection, auth_url: str) -> Any:
    """keystoneauth's v3 plugin: ApplicationCredential when one is set, else Password.

    Ids win over names (keystoneauth sends the id when both are given), so a default
    ``Default`` domain name never hides a domain id.
    """
    from keystoneauth1.identity import v3

    if conn.uses_application_credential:
        user = {"username": conn.user} if conn.user and not conn.application_credential_id else {}
        if user:
            user.update(_domain("user", conn.user_domain_id, conn.user_domain_name))
        return v3.ApplicationCredential(
            auth_url=auth_url,
            application_credential_id=conn.application_credential_id or None,
            application_credential_name=conn.application_credential_name or None,
            application_credential_secret=conn.application_credential_secret,
            **user,
        )
    project: dict[str, str] = (
        {"project_id": conn.project_id}
        if conn.project_id
        else {
            "project_name": conn.tenant,
            **_domain("project", conn.project_domain_id, conn.project_domain_name),
        }
    )
    return v3.Password(
        auth_url=auth_url,
        username=conn.user,
        password=conn.password,
        **_domain("user", conn.user_domain_id, conn.user_domain_name),
        **project,
    )


def _domain(prefix: str, domain_id: str, domain_name: str) -> dict[str, str]:
    if domain_id:
        return {f"{prefix}_domain_id": domain_id}
    return {f"{prefix}_domain_name": domain_name}


def quiet_insecure_warnings() -> None:
    """urllib3 warns on every unverified request; glancesync warns once per run instead."""
    from urllib3.exceptions import InsecureRequestWarning

    warnings.filterwarnings("ignore", category=InsecureRequestWarning)
