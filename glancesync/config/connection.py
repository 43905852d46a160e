"""The connection of one target: its section's keys, its cloud and (master only) the
environment, layered by ``glancesync.credentials`` (docs/connections.md).

The section gives the four password fields by the credential rules 1-2 of 2.4 (plain keys
when all four are there, else ``credential``); a ``CredentialError`` becomes the
``ConfigError`` that names the file, section and key to blame.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import replace

from glancesync import credentials
from glancesync.config.options import SECTION_CONNECTION_KEYS
from glancesync.config.reader import FROM_OVERRIDE, Section
from glancesync.credentials import Connection, CredentialError, MissingTexts, Setting
from glancesync.errors import ConfigError

MASTER = "master"

MISSING_CREDENTIAL = (
    "A credential parameter is mandatory for each target "
    "(or the set: user, password, tenant, keystone_url)"
)
MISSING_MASTER_FIELD = {
    "user": "A username for master target must be provided in configuration "
    "or OS_USERNAME must be defined",
    "password": "A password for master target must be provided in configuration "
    "or OS_PASSWORD must be defined. "
    "In the configuration file, passwords must be encoded with base64",
    "keystone_url": "A keystone url for master target must be provided in configuration "
    "or OS_AUTH_URL must be defined.",
    "tenant": "A tenant name for master target must be provided in configuration "
    "or OS_TENANT_NAME must be defined.",
}
CREDENTIAL_FIELDS = ("user", "password", "keystone_url", "tenant")
INSECURE_WARNING = "Target {target}: insecure = true, TLS certificates are not verified"


def read_connection(
    section: Section, environ: Mapping[str, str], warnings: list[str]
) -> tuple[Connection, str]:
    """The target's connection and the name of its cloud ("" when none).

    Only the master reads the ``OS_*`` variables; ``environ`` always locates the
    clouds.yaml files. Appends the insecure and Keystone v2.0 warnings.
    """
    env = environ if section.name == MASTER else {}
    conn, cloud = _resolve(section, env, environ, warnings)
    if conn.insecure:
        warnings.append(INSECURE_WARNING.format(target=section.name))
    url = _keystone_v3(conn.keystone_url, warnings)
    return replace(conn, keystone_url=url), cloud


def _resolve(
    section: Section, env: Mapping[str, str], environ: Mapping[str, str], warnings: list[str]
) -> tuple[Connection, str]:
    """Credential, TLS and interface by the layers of ``glancesync.credentials``."""
    own = _section_layer(section)
    env_layer = credentials.environment_layer(env, section.name)
    cloud = own.pop("cloud", None) or env_layer.get("cloud")
    layers: list[Mapping[str, Setting]] = [own]
    try:
        if cloud is not None:
            cloud_fields, cloud_warnings = credentials.cloud_layer(cloud, environ)
            layers.append(cloud_fields)
            warnings.extend(w for w in cloud_warnings if w not in warnings)
        if any(key.startswith("application_credential") for lay in layers for key in lay):
            # OS_AUTH_TYPE describes the openrc's own credential, not the file's.
            env_layer.pop("auth_type", None)
        layers.append(env_layer)
        missing = (
            MissingTexts(MISSING_CREDENTIAL)
            if section.name != MASTER
            else MissingTexts(
                MISSING_CREDENTIAL,
                MISSING_MASTER_FIELD,
                MISSING_MASTER_FIELD["keystone_url"],
                keystone_url_key="",
            )
        )
        conn = credentials.resolve(layers, missing)
    except CredentialError as exc:
        raise _config_error(section, exc) from None
    return conn, cloud.value if cloud else ""


def _config_error(section: Section, exc: CredentialError) -> ConfigError:
    """Name the file, section and key of the setting to blame (reference 2.1)."""
    if exc.setting is not None:
        s = exc.setting
        return ConfigError(exc.problem, source=s.source, section=s.section, key=s.key)
    if exc.problem == MISSING_CREDENTIAL:
        return ConfigError(exc.problem, source=some_source(section), section=section.name)
    return section.missing(exc.key, exc.problem)


def _section_layer(section: Section) -> dict[str, Setting]:
    """The section's own connection keys; the credential rules 1-2 of 2.4 give the four
    password fields (plain keys when all four are there, else ``credential``)."""

    def setting(key: str, value: str | None = None) -> Setting:
        raw = section.values[key]
        text = raw.text.strip() if value is None else value
        return Setting(text, raw.source, section.name, key)

    layer = {key: setting(key) for key in SECTION_CONNECTION_KEYS if section.string(key)}
    plain = {key: section.string(key) for key in ("user", "password", "keystone_url")}
    tenant_key = "tenant" if section.string("tenant") else "project"
    plain["tenant"] = section.string(tenant_key)
    credential = section.string("credential")
    if credential and not all(plain.values()):
        fields = _split_credential(section, credential)
        for key, value in zip(CREDENTIAL_FIELDS, fields, strict=True):
            layer[key] = setting("credential", value)
        return layer
    for key, value in plain.items():
        if value:
            layer[key] = setting(tenant_key if key == "tenant" else key)
    return layer


def some_source(section: Section) -> str:
    """Where a section came from: ``--config`` when only overrides define it."""
    sources = {value.source for value in section.values.values()}
    return FROM_OVERRIDE if sources == {FROM_OVERRIDE} else section.base_source


def _split_credential(section: Section, credential: str) -> tuple[str, str, str, str]:
    """``user,base64(password),keystone_url,tenant_name`` (base64 has no commas to confuse)."""
    parts = [part.strip() for part in credential.split(",")]
    if len(parts) != 4:
        raise section.error(
            "credential",
            f"credential must have 4 comma-separated fields "
            f"(user,base64(password),keystone_url,tenant_name), not {len(parts)}",
        )
    user, encoded, keystone_url, tenant = parts
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise section.error(
            "credential", "the password in credential is not valid base64"
        ) from None
    try:
        password = decoded.decode("utf-8")
    except UnicodeDecodeError:
        problem = "the password in credential is not base64-encoded UTF-8 text"
        raise section.error("credential", problem) from None
    return user, password, keystone_url, tenant


def _keystone_v3(url: str, warnings: list[str]) -> str:
    """reference 2.4: only Keystone v3 is spoken, so a /v2.0 URL is rewritten (with a warning)."""
    if not credentials.is_keystone_v2(url):
        return url
    new = credentials.keystone_v3_url(url)
    warnings.append(f"keystone_url {url} uses Keystone v2.0; using {new} instead")
    return new
