"""What an operator gets to point glancesync at the testbed: clouds.yaml and openrc files.

Written into the testbed folder at every start (issue 13), next to ``ca.pem``; the README
examples of "Connecting to your clouds" use them through ``$TESTBED_DIR`` only.

* ``clouds.yaml``: ``testbed`` (keystone-1 over TLS, password), ``testbed-appcred``
  (keystone-1, application credential), ``madrid`` (keystone-2 over TLS with domain and
  project ids, Glance by its ``internal`` TLS endpoint) and ``madrid-appcred``.
* ``openrc``: the master cloud (keystone-1 over TLS) with a password; ``openrc-appcred``
  the same with its application credential. Neither sets ``OS_CACERT``: the examples do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FILES = ("clouds.yaml", "openrc", "openrc-appcred")


def _clouds(info: dict[str, Any]) -> dict[str, Any]:
    ca = info["tls"]["ca"]
    ks1, ks2 = info["keystones"]["keystone-1"], info["keystones"]["keystone-2"]

    def password(ks: dict[str, Any], ids: bool) -> dict[str, str]:
        admin = ks["admin"]
        auth = {"auth_url": ks["tls_url"], "username": admin["username"]}
        auth["password"] = admin["password"]
        if ids:
            domain = "default"
            auth.update(
                project_id=admin["project_id"], user_domain_id=domain, project_domain_id=domain
            )
        else:
            auth.update(
                project_name=admin["project_name"],
                user_domain_name=admin["user_domain_name"],
                project_domain_name=admin["project_domain_name"],
            )
        return auth

    def app(ks: dict[str, Any]) -> dict[str, str]:
        cred = ks["app_credential"]
        return {
            "auth_url": ks["tls_url"],
            "application_credential_id": cred["id"],
            "application_credential_secret": cred["secret"],
        }

    appcred = "v3applicationcredential"
    return {
        "clouds": {
            "testbed": {"auth": password(ks1, ids=False), "cacert": ca, "region_name": "Spain2"},
            "testbed-appcred": {"auth_type": appcred, "auth": app(ks1), "cacert": ca},
            "madrid": {"auth": password(ks2, ids=True), "cacert": ca, "interface": "internal"},
            "madrid-appcred": {
                "auth_type": appcred,
                "auth": app(ks2),
                "cacert": ca,
                "interface": "internal",
            },
        }
    }


def _openrc(variables: dict[str, str]) -> str:
    lines = ["# glancesync testbed: the master cloud (keystone-1 over TLS)"]
    lines += [f"export {key}={value}" for key, value in variables.items()]
    return "\n".join(lines) + "\n"


def write(workdir: Path, info: dict[str, Any]) -> None:
    """Write the files (mode 600: they hold passwords and secrets)."""
    ks1 = info["keystones"]["keystone-1"]
    admin, cred = ks1["admin"], ks1["app_credential"]
    common = {"OS_AUTH_URL": ks1["tls_url"], "OS_REGION_NAME": info["master_region"]}
    texts = {
        # JSON is YAML: no YAML writer needed in the product environment.
        "clouds.yaml": json.dumps(_clouds(info), indent=2) + "\n",
        "openrc": _openrc(
            {
                **common,
                "OS_USERNAME": admin["username"],
                "OS_PASSWORD": admin["password"],
                "OS_PROJECT_NAME": admin["project_name"],
                "OS_USER_DOMAIN_ID": "default",
                "OS_PROJECT_DOMAIN_ID": "default",
            }
        ),
        "openrc-appcred": _openrc(
            {
                **common,
                "OS_AUTH_TYPE": "v3applicationcredential",
                "OS_APPLICATION_CREDENTIAL_ID": cred["id"],
                "OS_APPLICATION_CREDENTIAL_SECRET": cred["secret"],
            }
        ),
    }
    for name, text in texts.items():
        path = workdir / name
        path.write_text(text)
        os.chmod(path, 0o600)
