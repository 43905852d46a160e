"""The layers a connection is looked up in: the section's keys, a clouds.yaml cloud and
(for the master target only) the ``OS_*`` environment.

A section key wins over the cloud's value; the environment only fills what is still
missing (``glancesync.credentials.resolution`` walks the layers). The cloud is read with
openstacksdk's own loader, so every file location and key spelling openstacksdk accepts
works.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from glancesync.credentials.values import CredentialError, Setting, readable_secrets_warning

# Keys of a target section added by issue 13 (glancesync.config.options lists them too).
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

# Master target: field -> environment variables, first one set wins (reference 2.5).
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
        warning
        for path in (sdk.config_filename, sdk.secure_config_filename)
        if path
        and _holds_secret(path, cloud.value)
        and (warning := readable_secrets_warning(path)) is not None
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
