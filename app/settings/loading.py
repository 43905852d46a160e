"""Where the service's files are and how they become one ``Settings`` (reference 11.2).

Settings first, then the logging file, as the old server did; the environment may name
either file and the Celery broker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

from app.settings.openstack import read_openstack
from app.settings.reader import Reader, SettingsError
from app.settings.sections import (
    Settings,
    read_celery,
    read_edges,
    read_notifications,
    read_schedule,
)

FIWARE_DIR = "/etc/fiware.d"
ETC_DIR = "/etc/glancesync"  # searched before the old FIWARE_DIR
SETTINGS_NAME = "fiware-glancesync.cfg"
LOGGING_NAME = "fiware-glancesync-logging.cfg"
SETTINGS_VAR = "GLANCESYNC_SETTINGS_FILE"
LOGGING_VAR = "GLANCESYNC_LOGGING_SETTINGS_FILE"
FLASK_CONFIG_VAR = "GLANCESYNCAPP_CONFIG"
BROKER_URL_VAR = "GLANCESYNCAPP_BROKER_URL"

MISSING_FILE = (
    "ERROR: There is neither defined {var} environment variable\n"
    "pointing to {name} nor {path}\n"
    "file. Please correct at least one of them to execute the program."
)


def locate(
    var: str,
    name: str,
    environ: Mapping[str, str],
    fiware_dir: str = FIWARE_DIR,
    required: bool = True,
    etc_dir: str = ETC_DIR,
) -> str:
    """The file named by ``var``, else ``<etc_dir>/<name>``, else ``<fiware_dir>/<name>``
    (the old path); the 11.2 message when none and ``required``, else ""."""
    probed = os.path.join(fiware_dir, name)
    path = environ.get(var, "")
    if path:
        if not os.path.isfile(path):
            raise SettingsError(f"ERROR: {var} points to {path}, which is not a readable file.")
        return path
    for candidate in (os.path.join(etc_dir, name), probed):
        if os.path.isfile(candidate):
            return candidate
    if not required:
        return ""
    raise SettingsError(MISSING_FILE.format(var=var, name=name, path=probed))


def read_settings(
    settings_file: str, logging_file: str, environ: Mapping[str, str] | None = None
) -> Settings:
    """Parse fiware-glancesync.cfg; old keys and sections are accepted and ignored.

    ``environ`` only locates clouds.yaml (``OS_CLIENT_CONFIG_FILE``) for ``CLOUD``.
    """
    reader = Reader(settings_file)
    openstack = read_openstack(reader, os.environ if environ is None else environ)
    return Settings(
        settings_file=settings_file,
        logging_file=logging_file,
        openstack=openstack,
        owner=reader.get("glancesync", "OWNER", Settings.owner),
        api_info_url=reader.get("glancesync", "API_INFO_URL", Settings.api_info_url),
        version=reader.get("glancesync", "VERSION", Settings.version),
        status=reader.get("glancesync", "STATUS", Settings.status),
        updated=reader.get("glancesync", "UPDATED", Settings.updated),
        host=reader.get("glancesync", "HOST", Settings.host),
        drain_file=reader.get("glancesync", "DRAIN_FILE", Settings.drain_file),
        port=reader.get_int("glancesync", "PORT", Settings.port),
        database_url=reader.get("database", "URL", ""),
        workers=reader.get_int("gunicorn", "WORKERS", Settings.workers),
        pidfile=reader.get("gunicorn", "PIDFILE", Settings.pidfile),
        loglevel=reader.get("gunicorn", "LOGLEVEL", Settings.loglevel),
        metrics_token=reader.get("metrics", "TOKEN", ""),
        notifications=read_notifications(reader),
        schedule=read_schedule(reader),
        celery=read_celery(reader),
        threads=reader.get_positive("gunicorn", "THREADS", Settings.threads),
        timeout=reader.get_positive("gunicorn", "TIMEOUT", Settings.timeout),
        graceful_timeout=reader.get_positive(
            "gunicorn", "GRACEFUL_TIMEOUT", Settings.graceful_timeout
        ),
        pool_size=reader.get_positive("database", "POOL_SIZE", Settings.pool_size),
        **read_edges(reader),
    )


def load_settings(
    environ: Mapping[str, str] | None = None, fiware_dir: str = FIWARE_DIR
) -> Settings:
    """Locate both files (settings first, as the old server did) and read the settings."""
    environ = os.environ if environ is None else environ
    settings_file = locate(SETTINGS_VAR, SETTINGS_NAME, environ, fiware_dir)
    # No logging file: the packaged defaults (INFO to stderr), see app.logs.
    logging_file = locate(LOGGING_VAR, LOGGING_NAME, environ, fiware_dir, required=False)
    settings = read_settings(settings_file, logging_file, environ)
    if environ.get(BROKER_URL_VAR):
        celery = replace(settings.celery, broker_url=environ[BROKER_URL_VAR])
        settings = replace(settings, celery=celery)
    return settings


def flask_config_file(environ: Mapping[str, str]) -> str | None:
    """The optional Python config file of GLANCESYNCAPP_CONFIG (a folder means its config.py)."""
    value = environ.get(FLASK_CONFIG_VAR, "")
    if not value:
        return None
    path = os.path.join(value, "config.py") if os.path.isdir(value) else value
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise SettingsError(
            f"ERROR: {FLASK_CONFIG_VAR} points to {path}, which does not exist or cannot be read."
        )
    return path
