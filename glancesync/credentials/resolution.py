"""Resolution: the connection of one target from its layers, or the setting to blame.

Resolution is pure: it takes plain mappings of ``Setting`` and returns a ``Connection``
or raises a ``CredentialError`` naming the setting to blame; the CLI's configuration and
the service's settings turn that into their one-line ``ERROR:``. An application
credential wins over a password when both are complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from glancesync.credentials.connection import INTERFACES, Connection
from glancesync.credentials.values import CredentialError, Setting, parse_bool

APP_CREDENTIAL_AUTH = frozenset({"v3applicationcredential", "applicationcredential"})
PASSWORD_AUTH = frozenset({"password", "v3password"})

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
    """A complete password credential, or the error of reference 2.4 / 2.5."""
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
    try:
        return parse_bool(setting.value)
    except ValueError as exc:
        raise CredentialError(str(exc), setting) from None


def _interface(setting: Setting | None) -> str:
    if setting is None:
        return "public"
    value = setting.value.strip().lower()
    value = value[:-3] if value.endswith("url") else value  # publicURL, the v2 spelling
    if value not in INTERFACES:
        raise CredentialError(BAD_INTERFACE.format(value=setting.value), setting)
    return value
