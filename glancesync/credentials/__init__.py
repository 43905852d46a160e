"""How a target (or the REST service) reaches its cloud: credential, TLS, endpoint interface.

The settings of one connection come from three layers, looked up field by field:

1. the keys of the target's section (the INI file, ``[DEFAULT]``, ``--config``), or the
   service's ``[openstack]`` keys;
2. the cloud named by ``cloud`` / ``CLOUD`` (clouds.yaml and secure.yaml);
3. for the master target only, the ``OS_*`` environment variables.

The modules, one reason to change each:

- ``connection``: the ``Connection`` value, the v3 form of a Keystone URL, keystoneauth;
- ``values``: a raw ``Setting`` and its origin, the true/false parser, the permission
  check of files that hold secrets;
- ``layers``: the environment and clouds.yaml layers;
- ``resolution``: the layers to a ``Connection`` (or the ``CredentialError`` to show).

Import from ``glancesync.credentials``; the names below are its public interface.
"""

from glancesync.credentials.connection import (
    INTERFACES,
    Connection,
    auth_plugin,
    is_keystone_v2,
    keystone_v3_url,
    quiet_insecure_warnings,
)
from glancesync.credentials.layers import (
    CLOUD_KEYS,
    CONNECTION_OPTIONS,
    ENVIRONMENT,
    SECRET_FIELDS,
    cloud_layer,
    environment_layer,
)
from glancesync.credentials.resolution import MissingTexts, resolve
from glancesync.credentials.values import (
    READABLE_SECRETS,
    CredentialError,
    Setting,
    parse_bool,
    readable_secrets_warning,
)

__all__ = [
    "CLOUD_KEYS",
    "CONNECTION_OPTIONS",
    "ENVIRONMENT",
    "INTERFACES",
    "READABLE_SECRETS",
    "SECRET_FIELDS",
    "Connection",
    "CredentialError",
    "MissingTexts",
    "Setting",
    "auth_plugin",
    "cloud_layer",
    "environment_layer",
    "is_keystone_v2",
    "keystone_v3_url",
    "parse_bool",
    "quiet_insecure_warnings",
    "readable_secrets_warning",
    "resolve",
]
