"""The server's own configuration: fiware-glancesync.cfg and the environment (BEHAVIOUR.md 11).

- ``reader``: the cfg file's typed keys and ``SettingsError``;
- ``openstack``: ``[openstack]``, the service's ``Connection`` and roles;
- ``sections``: ``Settings`` and the other sections;
- ``loading``: where the files are, and the whole ``Settings`` from them;
- ``database``: the SQLAlchemy URL.

Import from ``app.settings``; the names below are its public interface.
"""

from app.settings.database import (
    DATABASE_FILE,
    DATABASE_PATH_VAR,
    DATABASE_URL_VAR,
    database_url,
    driver_url,
    is_mysql,
    psycopg_url,
)
from app.settings.loading import (
    BROKER_URL_VAR,
    FIWARE_DIR,
    FLASK_CONFIG_VAR,
    LOGGING_NAME,
    LOGGING_VAR,
    SETTINGS_NAME,
    SETTINGS_VAR,
    flask_config_file,
    load_settings,
    locate,
    read_settings,
)
from app.settings.openstack import OPENSTACK_KEYS, OpenStackSettings, role_list
from app.settings.reader import SettingsError
from app.settings.sections import (
    RELEASE_DATE,
    CelerySettings,
    NotificationSettings,
    ScheduleSettings,
    Settings,
)

__all__ = [
    "BROKER_URL_VAR",
    "DATABASE_FILE",
    "DATABASE_PATH_VAR",
    "DATABASE_URL_VAR",
    "FIWARE_DIR",
    "FLASK_CONFIG_VAR",
    "LOGGING_NAME",
    "LOGGING_VAR",
    "OPENSTACK_KEYS",
    "RELEASE_DATE",
    "SETTINGS_NAME",
    "SETTINGS_VAR",
    "CelerySettings",
    "NotificationSettings",
    "OpenStackSettings",
    "ScheduleSettings",
    "Settings",
    "SettingsError",
    "database_url",
    "flask_config_file",
    "load_settings",
    "locate",
    "psycopg_url",
    "driver_url",
    "is_mysql",
    "read_settings",
    "role_list",
]
