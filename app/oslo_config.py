"""One oslo.config object for every oslo library the service uses.

keystonemiddleware (``[keystone_authtoken]``), oslo.policy (``[oslo_policy]``) and
oslo.messaging (``[oslo_messaging_rabbit]``: TLS CA, quorum queues, heartbeats) each
read their own section of ``fiware-glancesync.cfg``, written exactly as operators
already write them for any OpenStack API. The service's ``[openstack]`` keys give the
defaults of ``[keystone_authtoken]`` (its credentials, CA, interface), so a file without
that section keeps working; a key written in ``[keystone_authtoken]`` wins.
"""

from __future__ import annotations

from flask import Flask
from oslo_config import cfg

from app.settings import OpenStackSettings, SettingsError
from glancesync import __version__

AUTHTOKEN = "keystone_authtoken"
OSLO_CONF = "glancesync.oslo_conf"  # the app.extensions key of the one object
PROJECT = "glancesync"
# The service's own validation cache keeps an answer this long (keystonemiddleware's
# default): a revoked token or a removed role is refused at the latest after it.
TOKEN_CACHE_TIME = 300


def build_conf(settings_file: str | None, openstack: OpenStackSettings) -> cfg.ConfigOpts:
    """The ConfigOpts of ``settings_file``, with ``[keystone_authtoken]`` defaults set from
    ``[openstack]``; SettingsError when oslo.config cannot read the file."""
    conf = cfg.ConfigOpts()
    files = [settings_file] if settings_file else []
    try:
        # only the service's own file: no *.conf.d folder is read behind the operator's back
        conf(
            [],
            project=PROJECT,
            version=__version__,
            default_config_files=files,
            default_config_dirs=[],
        )
    except cfg.Error as exc:
        raise SettingsError(
            f"ERROR: Cannot read {settings_file} for the oslo libraries: {exc}"
        ) from None
    _authtoken_defaults(conf, openstack)
    return conf


def authtoken_conf(openstack: OpenStackSettings) -> cfg.ConfigOpts:
    """The same options with no file: ``[openstack]`` alone (tools and tests)."""
    return build_conf(None, openstack)


def _authtoken_defaults(conf: cfg.ConfigOpts, openstack: OpenStackSettings) -> None:
    """Register keystonemiddleware's options and its auth plugin's, with our defaults."""
    from keystoneauth1 import loading
    from keystonemiddleware import auth_token

    for group, opts in auth_token.list_opts():
        conf.register_opts(opts, group=group)
    loading.register_auth_conf_options(conf, AUTHTOKEN)
    conn = openstack.connection
    app_cred = conn.uses_application_credential
    conf.set_default("auth_type", "v3applicationcredential" if app_cred else "password", AUTHTOKEN)
    for key, value in (
        ("www_authenticate_uri", conn.keystone_url),
        ("cafile", conn.cacert or None),
        ("insecure", conn.insecure),
        ("interface", conn.interface),
        ("token_cache_time", TOKEN_CACHE_TIME),
        ("service_token_roles_required", True),
    ):
        conf.set_default(key, value, AUTHTOKEN)
    plugin = conf[AUTHTOKEN].auth_type
    plugin_opts = loading.get_auth_plugin_conf_options(plugin)
    conf.register_opts(plugin_opts, group=AUTHTOKEN)
    known = {opt.dest for opt in plugin_opts}
    for key, value in _credential_defaults(openstack).items():
        if key in known and value:
            conf.set_default(key, value, AUTHTOKEN)


def _credential_defaults(openstack: OpenStackSettings) -> dict[str, str]:
    """The auth plugin options of the service's own [openstack] connection (domain ids
    included, as the CLI signs in)."""
    conn = openstack.connection
    return {
        "auth_url": conn.keystone_url,
        "username": conn.user,
        "password": conn.password,
        "project_id": conn.project_id,
        "project_name": "" if conn.project_id else conn.tenant,
        "user_domain_id": conn.user_domain_id,
        "user_domain_name": "" if conn.user_domain_id else conn.user_domain_name,
        "project_domain_id": conn.project_domain_id,
        "project_domain_name": "" if conn.project_domain_id else conn.project_domain_name,
        "application_credential_id": conn.application_credential_id,
        "application_credential_name": conn.application_credential_name,
        "application_credential_secret": conn.application_credential_secret,
    }


def service_conf(app: Flask) -> cfg.ConfigOpts:
    """The app's one oslo.config object (made by the application factory; built here on
    first use for an app made without it, e.g. the listener's own)."""
    conf = app.extensions.get(OSLO_CONF)
    if conf is None:
        settings = app.config["SETTINGS"]
        conf = app.extensions[OSLO_CONF] = build_conf(settings.settings_file, settings.openstack)
    return conf
