"""``[openstack]``: the service's own Keystone access (token validation) and the roles.

The connection is a ``glancesync.credentials.Connection``, resolved by the same layers as
a CLI target (the keys over the cloud named by CLOUD), so the service honours every
connection key the CLI does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from app.settings.reader import Reader, SettingsError
from glancesync import credentials
from glancesync.credentials import Connection, CredentialError, MissingTexts, Setting
from glancesync.errors import ConfigError

SECTION = "openstack"

# [openstack] key -> connection field (glancesync.credentials), in the order of the
# "missing key" checks.
OPENSTACK_KEYS = {
    "KEYSTONE_URL": "keystone_url",
    "ADM_USER": "user",
    "ADM_PASS": "password",
    "ADM_TENANT_ID": "project_id",
    "ADM_TENANT_NAME": "tenant",
    "USER_DOMAIN_NAME": "user_domain_name",
    "PROJECT_DOMAIN_NAME": "project_domain_name",
    "APPLICATION_CREDENTIAL_ID": "application_credential_id",
    "APPLICATION_CREDENTIAL_SECRET": "application_credential_secret",
    "CACERT": "cacert",
    "INSECURE": "insecure",
    "INTERFACE": "interface",
}
APP_CREDENTIAL_FIELDS = ("application_credential_id", "application_credential_secret")


@dataclass(frozen=True)
class OpenStackSettings:
    """Keystone access of the service itself, never shown to clients; its keystone_url
    is already in its v3 form."""

    connection: Connection
    cloud: str = ""  # the clouds.yaml cloud of CLOUD, if any
    required_roles: tuple[str, ...] = ("admin",)
    # Roles that may see the web page (/ui/) read-only; REQUIRED_ROLES may also sync.
    viewer_roles: tuple[str, ...] = ("reader", "member")


def read_openstack(reader: Reader, environ: Mapping[str, str]) -> OpenStackSettings:
    """The service's own Keystone access: the keys, over the cloud named by CLOUD (if any).

    With an application credential, ADM_USER, ADM_PASS and the tenant are not needed.
    """
    own = {
        name: Setting(reader.get(SECTION, key, ""), reader.path, SECTION, key)
        for key, name in OPENSTACK_KEYS.items()
        if reader.get(SECTION, key, "")
    }
    cloud = reader.get(SECTION, "CLOUD", "")
    layers: list[Mapping[str, Setting]] = [own]
    try:
        if cloud:
            setting = Setting(cloud, reader.path, SECTION, "CLOUD")
            layers.append(credentials.cloud_layer(setting, environ)[0])
        _check_required(reader, layers)
        conn = credentials.resolve(layers, MissingTexts("", {}))
    except CredentialError as exc:
        raise _settings_error(reader, exc) from None
    return OpenStackSettings(
        connection=replace(conn, keystone_url=credentials.keystone_v3_url(conn.keystone_url)),
        cloud=cloud,
        required_roles=_required_roles(reader),
        viewer_roles=role_list(reader.get(SECTION, "VIEWER_ROLES", "reader, member")),
    )


def _required_roles(reader: Reader) -> tuple[str, ...]:
    roles = reader.get(SECTION, "REQUIRED_ROLES", "admin")
    if reader.parser.has_option(SECTION, "REQUIRED_ROLES"):
        roles = reader.parser.get(SECTION, "REQUIRED_ROLES")  # set but empty is an error
    required = role_list(roles)
    if not required:  # e.g. "," : every token would pass, whatever its roles
        raise SettingsError(
            f"ERROR: Key REQUIRED_ROLES in section [{SECTION}] of {reader.path} names no role; "
            "give at least one (default: admin)"
        )
    return required


def _check_required(reader: Reader, layers: list[Mapping[str, Setting]]) -> None:
    """The 11.1 "missing key" errors, unless the cloud or an application credential fills in."""
    given = {name for layer in layers for name in layer}
    required = ["KEYSTONE_URL"]
    if not all(name in given for name in APP_CREDENTIAL_FIELDS):
        required += ["ADM_USER", "ADM_PASS"]
    for key in required:
        if OPENSTACK_KEYS[key] not in given:
            raise SettingsError(
                f"ERROR: Missing required key {key} in section [openstack] of {reader.path}"
            )
    needs_tenant = "password" in given and not all(n in given for n in APP_CREDENTIAL_FIELDS)
    if needs_tenant and not {"project_id", "tenant"} & given:
        raise SettingsError(
            f"ERROR: Missing required key ADM_TENANT_ID or ADM_TENANT_NAME in section "
            f"[openstack] of {reader.path}"
        )


def _settings_error(reader: Reader, exc: CredentialError) -> SettingsError:
    s = exc.setting
    where = (s.source, s.section, s.key) if s else (reader.path, SECTION, exc.key)
    return SettingsError("ERROR: " + ConfigError(exc.problem, *where).render())


def role_list(text: str) -> tuple[str, ...]:
    return tuple(r.strip() for r in text.split(",") if r.strip())
