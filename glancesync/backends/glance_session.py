"""The Keystone side of a target: its token, its two sessions, its catalog and clients.

Nothing touches the network until a method needs it: the Keystone session is built on
first use, then shared by every region of the target. Two sessions share one auth plugin
(so one token): a "list" session whose timeout is the target's ``list_images_timeout``,
and a "data" session with a long read timeout for uploads and downloads.
Re-authentication is keystoneauth's: the auth plugin keeps the credentials and fetches a
new token whenever the current one is about to expire.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from glancesync.credentials import auth_plugin, keystone_v3_url, quiet_insecure_warnings
from glancesync.errors import RegionNotFound

if TYPE_CHECKING:
    from glancesync.config import Target

_VERSION_PATH = re.compile(r"/v\d+(\.\d+)?/?$")


def unversioned(url: str) -> str:
    """A catalog endpoint without its version path (``/v2``), no trailing slash."""
    return _VERSION_PATH.sub("", url).rstrip("/")


class TargetSessions:
    """The auth plugin, the "list" and "data" sessions and the glanceclient clients of one
    target, built once and shared by its regions' threads."""

    def __init__(self, target: Target, data_timeout: float) -> None:
        self.target = target
        self.data_timeout = data_timeout
        self._lock = threading.RLock()
        self._auth: Any = None
        self._sessions: dict[str, Any] = {}
        self._clients: dict[tuple[str, str], Any] = {}

    def auth_plugin(self) -> Any:
        """Password or application credential (``glancesync.credentials``)."""
        with self._lock:
            if self._auth is None:
                conn = self.target.connection
                self._auth = auth_plugin(conn, keystone_v3_url(conn.keystone_url))
            return self._auth

    def session(self, kind: str) -> Any:
        """The "list" or "data" session; both share the auth plugin, hence the token.

        Both verify TLS the same way: the target's ``cacert``, or nothing with
        ``insecure`` (warned about once per run by the configuration, not per request).
        """
        from keystoneauth1 import session

        with self._lock:
            if kind not in self._sessions:
                timeout = self.target.list_images_timeout if kind == "list" else self.data_timeout
                verify = self.target.connection.verify
                if verify is False:
                    quiet_insecure_warnings()
                self._sessions[kind] = session.Session(
                    auth=self.auth_plugin(), timeout=timeout, verify=verify
                )
            return self._sessions[kind]

    def catalog_regions(self) -> list[str]:
        """The regions that have an image endpoint of the target's interface."""
        session = self.session("list")
        access = self.auth_plugin().get_access(session)
        endpoints = access.service_catalog.get_endpoints(
            service_type="image", interface=self.target.connection.interface
        )
        names = {ep.get("region_id") or ep.get("region") for ep in endpoints.get("image", [])}
        return sorted(name for name in names if name)

    def client(self, region: str, kind: str = "data") -> Any:
        """A glanceclient v2 Client for ``region``; RegionNotFound when not in the catalog."""
        with self._lock:
            client = self._clients.get((region, kind))
        if client is not None:
            return client
        if region not in self.catalog_regions():
            raise RegionNotFound("region not found")
        from glanceclient import Client

        client = Client(
            "2",
            session=self.session(kind),
            region_name=region,
            interface=self.target.connection.interface,
        )
        with self._lock:
            return self._clients.setdefault((region, kind), client)

    def secrets(self) -> Iterator[str]:
        """What a reported cause must never show: the credentials and the current token."""
        for secret in self.target.connection.secrets():
            if len(secret) >= 4:
                yield secret
        ref = getattr(self._auth, "auth_ref", None)
        token = getattr(ref, "auth_token", None) if ref is not None else None
        if token:
            yield token
