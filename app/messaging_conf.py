"""The oslo.config object oslo.messaging reads: the cfg's ``[oslo_messaging_rabbit]``.

A real bus needs options only oslo.messaging knows (TLS CA, quorum queues, heartbeats);
operators write them in ``fiware-glancesync.cfg`` exactly as for any OpenStack service,
and oslo.messaging registers and reads them from this object when it builds its
transport. The service has one such object per process (``OSLO_CONF`` of
``app.extensions``); ``build_conf`` has the name and signature of the security module's
(issue 22), which builds the same object for ``[keystone_authtoken]`` and
``[oslo_policy]``, so that one can replace this one by an import.
"""

from __future__ import annotations

from flask import Flask
from oslo_config import cfg

from app.settings import OpenStackSettings, SettingsError

PROJECT = "glancesync"
OSLO_CONF = "glancesync.oslo_conf"


def build_conf(settings_file: str | None, openstack: OpenStackSettings) -> cfg.ConfigOpts:
    """The ConfigOpts of ``settings_file`` (no other file or folder is read);
    SettingsError when oslo.config cannot read it. ``openstack`` is unused here."""
    conf = cfg.ConfigOpts()
    files = [settings_file] if settings_file else []
    try:
        conf([], project=PROJECT, default_config_files=files, default_config_dirs=[])
    except cfg.Error as exc:
        raise SettingsError(
            f"ERROR: Cannot read {settings_file} for the oslo libraries: {exc}"
        ) from None
    return conf


def service_conf(app: Flask) -> cfg.ConfigOpts:
    """The app's one oslo.config object, built on first use from its settings file."""
    conf = app.extensions.get(OSLO_CONF)
    if conf is None:
        settings = app.config["SETTINGS"]
        conf = app.extensions[OSLO_CONF] = build_conf(settings.settings_file, settings.openstack)
    return conf
