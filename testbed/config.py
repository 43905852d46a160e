"""Writers for the Keystone and Glance ini files of the testbed.

Only the keys that differ from the defaults (or that the servers refuse to start
without) are written; testbed/README.md says why each one is there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

Sections = dict[str, dict[str, str]]

_UUID = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
# The AMI part of the schema-image.json that packaged Glance installs in /etc/glance (the
# PyPI wheel has none): with it, glanceclient refuses to update an image whose kernel_id
# is not a UUID, as on real clouds.
IMAGE_SCHEMA = {
    key: {"type": ["null", "string"], "pattern": _UUID, "description": f"{key} (AMI images)"}
    for key in ("kernel_id", "ramdisk_id")
}


def render_ini(sections: Sections) -> str:
    """Plain ini text (no interpolation: values go through verbatim)."""
    out: list[str] = []
    for name, values in sections.items():
        out.append(f"[{name}]")
        out.extend(f"{key} = {value}" for key, value in values.items())
        out.append("")
    return "\n".join(out)


def keystone_conf(conf_dir: Path, token_expiration: int) -> Path:
    """keystone.conf with a SQLite db, fernet tokens and key folders in conf_dir."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    fernet = conf_dir / "fernet-keys"
    sections: Sections = {
        "DEFAULT": {"debug": "false", "use_stderr": "true"},
        "database": {"connection": f"sqlite:///{conf_dir / 'keystone.db'}"},
        "token": {"provider": "fernet", "expiration": str(token_expiration)},
        # bcrypt's minimum cost: every token issued verifies a password hash.
        "identity": {"password_hash_rounds": "4"},
        "fernet_tokens": {"key_repository": str(fernet)},
        "fernet_receipts": {"key_repository": str(fernet)},
        "credential": {"key_repository": str(conf_dir / "credential-keys")},
        "oslo_messaging_notifications": {"driver": "noop"},
        "oslo_concurrency": {"lock_path": str(conf_dir / "locks")},
    }
    path = conf_dir / "keystone.conf"
    path.write_text(render_ini(sections))
    return path


def notifications(url: str | None) -> dict[str, str]:
    """messagingv2 to ``url``; a small ``retry``, since the default (-1) retries forever
    and would hang every image API call while the broker is unreachable."""
    if url is None:
        return {"driver": "noop"}
    return {"driver": "messagingv2", "transport_url": url, "retry": "2"}


def _file_stores(conf_dir: Path, stores: tuple[str, ...]) -> Sections:
    """The sections of the region's file stores."""
    if not stores:
        return {"file": {"filesystem_store_datadir": str(conf_dir / "images")}}
    return {s: {"filesystem_store_datadir": str(conf_dir / f"images-{s}")} for s in stores}


def glance_conf(
    conf_dir: Path,
    *,
    venv: Path,
    port: int,
    keystone_url: str,
    service_password: str,
    identity_region: str,
    master_port: int,
    notifications_url: str | None = None,
    stores: tuple[str, ...] = (),
) -> Path:
    """glance-api.conf (+ paste ini) for one region, file store under conf_dir.

    ``keystone_url`` is the identity root without /v3.  The token-validating middleware
    looks the identity endpoint up in the catalog, so it is told the region and interface
    (public) where Keystone registered itself, not the Glance region.  ``master_port`` is the master
    region's Glance port, allowed as a source of glance-download / web-download imports.
    ``notifications_url``: the broker the master sends its notifications to (the others
    send none).
    ``stores``: file stores of a multi-store region (the first its default), each under
    ``conf_dir/images-<store>``; empty: the one store ``file`` under ``conf_dir/images``.
    """
    conf_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("images", "staging", "tasks", "locks", *(f"images-{s}" for s in stores)):
        (conf_dir / sub).mkdir(exist_ok=True)
    sections: Sections = {
        "DEFAULT": {
            "debug": "false",
            "use_stderr": "true",
            "enabled_backends": ", ".join(f"{s}:file" for s in stores or ("file",)),
            "worker_self_reference_url": f"http://127.0.0.1:{port}",
            # The brackets are required: without them every request fails with 500.
            "enabled_import_methods": "[glance-direct,web-download,copy-image,glance-download]",
        },
        "database": {"connection": f"sqlite:///{conf_dir / 'glance.db'}"},
        "glance_store": {"default_backend": (stores or ("file",))[0]},
        **_file_stores(conf_dir, stores),
        "os_glance_staging_store": {"filesystem_store_datadir": str(conf_dir / "staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(conf_dir / "tasks")},
        "import_filtering_opts": {
            "allowed_hosts": "[127.0.0.1]",
            "allowed_ports": f"[{master_port}]",
        },
        "paste_deploy": {
            "flavor": "keystone",
            "config_file": str(conf_dir / "glance-api-paste.ini"),
        },
        "keystone_authtoken": {
            "www_authenticate_uri": f"{keystone_url}/v3",
            "auth_url": f"{keystone_url}/v3",
            "auth_type": "password",
            "username": "glance",
            "password": service_password,
            "project_name": "service",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
            "region_name": identity_region,
            "interface": "public",
        },
        "oslo_messaging_notifications": notifications(notifications_url),
        "oslo_concurrency": {"lock_path": str(conf_dir / "locks")},
    }
    shutil.copyfile(
        venv / "etc" / "glance" / "glance-api-paste.ini", conf_dir / "glance-api-paste.ini"
    )
    (conf_dir / "schema-image.json").write_text(json.dumps(IMAGE_SCHEMA, indent=1))
    path = conf_dir / "glance-api.conf"
    path.write_text(render_ini(sections))
    return path
