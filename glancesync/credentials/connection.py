"""The connection value: everything one sign-in to a cloud needs, and how it is used.

``Connection`` is the one value that crosses module boundaries for a connection: the CLI's
targets and the REST service's ``[openstack]`` both hold one, built by
``glancesync.credentials.resolve``, so a key that one of them honours the other honours
too (a copy of the fields in each drifted once: the service lost the domain ids).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

INTERFACES = ("public", "internal", "admin")

_VERSION_PATH = re.compile(r"/v\d+(\.\d+)?$")
_KEYSTONE_V2 = re.compile(r"/v2\.0/?$")


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


def is_keystone_v2(url: str) -> bool:
    """True for a ``/v2.0`` URL: only v3 is spoken, so such a URL is rewritten (warned)."""
    return bool(_KEYSTONE_V2.search(url.strip()))


def keystone_v3_url(url: str) -> str:
    """The v3 form of a Keystone URL, for signing in.

    ``/v2.0`` becomes ``/v3``; a URL without a version path gets ``/v3``; a URL that
    already names a version keeps it. A trailing ``/`` is dropped, so one Keystone has
    one spelling (it also names the region lock of glancesync.regionlock).
    """
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    if path.endswith("/v2.0"):
        path = path[: -len("/v2.0")] + "/v3"
    elif not _VERSION_PATH.search(path):
        path += "/v3"
    return urlunsplit(parts._replace(path=path))


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
