"""The server's own configuration: fiware-glancesync.cfg and the environment (BEHAVIOUR.md 11).

Everything the service reads from outside is gathered here once, so that a wrong setting
stops the server at start with one clear message instead of failing a request later.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import glancesync
from app.placement import Routes, RoutesError, parse_routes
from glancesync import credentials
from glancesync.credentials import Connection, CredentialError, MissingTexts, Setting
from glancesync.errors import ConfigError

FIWARE_DIR = "/etc/fiware.d"
SETTINGS_NAME = "fiware-glancesync.cfg"
LOGGING_NAME = "fiware-glancesync-logging.cfg"
SETTINGS_VAR = "GLANCESYNC_SETTINGS_FILE"
LOGGING_VAR = "GLANCESYNC_LOGGING_SETTINGS_FILE"
DATABASE_PATH_VAR = "GLANCESYNCAPP_DATABASE_PATH"
DATABASE_URL_VAR = "GLANCESYNCAPP_DATABASE_URL"
FLASK_CONFIG_VAR = "GLANCESYNCAPP_CONFIG"
BROKER_URL_VAR = "GLANCESYNCAPP_BROKER_URL"
DATABASE_FILE = "glancesyncapi.db"
# Release date of this version: the default of [glancesync] UPDATED.
RELEASE_DATE = "2026-11-24T00:00:00Z"

MISSING_FILE = (
    "ERROR: There is neither defined {var} environment variable\n"
    "pointing to {name} nor {path}\n"
    "file. Please correct at least one of them to execute the program."
)


class SettingsError(Exception):
    """A server setting that stops the service; the message is printed as it is."""


@dataclass(frozen=True)
class OpenStackSettings:
    """Keystone access of the service itself (token validation), never shown to clients."""

    keystone_url: str
    user: str
    password: str = field(repr=False)
    tenant_id: str = ""
    tenant_name: str = ""
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    required_roles: tuple[str, ...] = ("admin",)
    # Roles that may see the web page (/ui/) read-only; REQUIRED_ROLES may also sync.
    viewer_roles: tuple[str, ...] = ("reader", "member")
    # Issue 13: a clouds.yaml cloud, an application credential, TLS and the interface.
    cloud: str = ""
    application_credential_id: str = ""
    application_credential_name: str = ""
    application_credential_secret: str = field(default="", repr=False)
    cacert: str = ""
    insecure: bool = False
    interface: str = "public"

    def connection(self) -> Connection:
        """The Keystone access of the service (``glancesync.credentials``)."""
        return Connection(
            keystone_url=self.keystone_url,
            user=self.user,
            password=self.password,
            tenant=self.tenant_name,
            project_id=self.tenant_id,
            user_domain_name=self.user_domain_name,
            project_domain_name=self.project_domain_name,
            application_credential_id=self.application_credential_id,
            application_credential_name=self.application_credential_name,
            application_credential_secret=self.application_credential_secret,
            cacert=self.cacert,
            insecure=self.insecure,
            interface=self.interface,
        )


@dataclass(frozen=True)
class NotificationSettings:
    """[notifications]: the master Glance's message bus, read by ``manage.py listen``."""

    transport_url: str = field(default="", repr=False)  # may hold the broker password
    topics: tuple[str, ...] = ("notifications",)
    quiet: float = 2.0
    max_wait: float = 10.0


@dataclass(frozen=True)
class CelerySettings:
    """[celery]: with a BROKER_URL, syncs run on ``manage.py worker`` processes (issue 15)."""

    broker_url: str = field(default="", repr=False)  # may hold the broker password
    routes: Routes = Routes()
    metrics_port: int = 0  # a worker's own /metrics (0: none), for workers on other hosts


@dataclass(frozen=True)
class ScheduleSettings:
    """[schedule]: syncs the service starts by itself, every INTERVAL seconds or on CRON."""

    interval: float | None = None
    cron: str | None = None
    regions: tuple[str, ...] = ()  # empty: the CLI's default list (BEHAVIOUR.md 7.3)

    @property
    def enabled(self) -> bool:
        return self.interval is not None or self.cron is not None


@dataclass(frozen=True)
class Settings:
    settings_file: str
    logging_file: str
    openstack: OpenStackSettings
    owner: str = "Telefonica I+D"
    api_info_url: str = "http://docs.glancesync.apiary.io/#"
    version: str = glancesync.__version__
    status: str = "SUPPORTED"
    updated: str = RELEASE_DATE
    host: str = "0.0.0.0"
    port: int = 8080
    database_url: str = ""
    workers: int = 5
    pidfile: str = "tmp/processes.pid"
    loglevel: str = "info"
    # [metrics] TOKEN: the Bearer token GET /metrics requires; empty: /metrics is open.
    metrics_token: str = field(default="", repr=False)
    notifications: NotificationSettings = NotificationSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    celery: CelerySettings = CelerySettings()
    # gthread workers: requests run in THREADS threads, so the arbiter's TIMEOUT (the
    # worker's own heartbeat) never kills a worker busy with a long request or sync.
    threads: int = 8
    timeout: int = 60
    graceful_timeout: int = 30
    pool_size: int = 5  # PostgreSQL connections per server process


def locate(var: str, name: str, environ: Mapping[str, str], fiware_dir: str = FIWARE_DIR) -> str:
    """The file named by ``var``, else ``<fiware_dir>/<name>``; the 11.2 message when neither."""
    probed = os.path.join(fiware_dir, name)
    path = environ.get(var, "")
    if path:
        if not os.path.isfile(path):
            raise SettingsError(f"ERROR: {var} points to {path}, which is not a readable file.")
        return path
    if os.path.isfile(probed):
        return probed
    raise SettingsError(MISSING_FILE.format(var=var, name=name, path=probed))


def keystone_v3_url(url: str) -> str:
    """``/v2.0`` becomes ``/v3``; a URL without a version path gets ``/v3`` (11.1)."""
    url = url.strip().rstrip("/")
    if url.endswith("/v2.0"):
        return url[: -len("/v2.0")] + "/v3"
    if url.endswith("/v3"):
        return url
    return url + "/v3"


class _Reader:
    """Reads keys of the cfg file, naming the file, section and key in every error."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.parser = configparser.ConfigParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as stream:
                self.parser.read_file(stream)
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise SettingsError(f"ERROR: Cannot read the settings file {path}: {reason}") from None

    def get(self, section: str, key: str, default: str | None = None) -> str:
        if self.parser.has_option(section, key):
            value = self.parser.get(section, key).strip()
            if value:
                return value
        if default is None:
            raise SettingsError(
                f"ERROR: Missing required key {key} in section [{section}] of {self.path}"
            )
        return default

    def get_int(self, section: str, key: str, default: int) -> int:
        value = self.get(section, key, str(default))
        try:
            return int(value)
        except ValueError:
            raise SettingsError(
                f"ERROR: Key {key} in section [{section}] of {self.path} must be an integer, "
                f"not {value!r}"
            ) from None

    def get_positive(self, section: str, key: str, default: int) -> int:
        value = self.get_int(section, key, default)
        if value < 1:
            raise SettingsError(
                f"ERROR: Key {key} in section [{section}] of {self.path} must be at least 1, "
                f"not {value}"
            )
        return value

    def get_seconds(self, section: str, key: str, default: float | None) -> float | None:
        """A number of seconds >= 0 (``default`` when the key is absent or empty)."""
        value = self.get(section, key, "" if default is None else str(default))
        if value == "":
            return None
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not seconds >= 0 or seconds == float("inf"):
            raise SettingsError(
                f"ERROR: Key {key} in section [{section}] of {self.path} must be a number "
                f"of seconds, not {value!r}"
            )
        return seconds

    def get_list(self, section: str, key: str) -> tuple[str, ...]:
        """Items separated by commas or blanks."""
        return tuple(self.get(section, key, "").replace(",", " ").split())


def _notifications(reader: _Reader) -> NotificationSettings:
    section = "notifications"
    return NotificationSettings(
        transport_url=reader.get(section, "TRANSPORT_URL", ""),
        topics=reader.get_list(section, "TOPICS") or NotificationSettings.topics,
        quiet=reader.get_seconds(section, "QUIET", NotificationSettings.quiet),
        max_wait=reader.get_seconds(section, "MAX_WAIT", NotificationSettings.max_wait),
    )


def _schedule(reader: _Reader) -> ScheduleSettings:
    from croniter import croniter

    section = "schedule"
    interval = reader.get_seconds(section, "INTERVAL", None)
    cron = reader.get(section, "CRON", "") or None
    where = f"in section [{section}] of {reader.path}"
    if interval is not None and cron is not None:
        raise SettingsError(f"ERROR: Set INTERVAL or CRON {where}, not both")
    if interval == 0:
        raise SettingsError(f"ERROR: Key INTERVAL {where} must be more than 0 seconds")
    if cron is not None and not croniter.is_valid(cron):
        raise SettingsError(f"ERROR: Key CRON {where} is not a valid cron expression: {cron!r}")
    return ScheduleSettings(interval, cron, reader.get_list(section, "REGIONS"))


# [openstack] key -> connection field (glancesync.credentials), in the order of the
# "missing key" checks.
OPENSTACK_KEYS = {
    "KEYSTONE_URL": "keystone_url",
    "ADM_USER": "user",
    "ADM_PASS": "password",
    "ADM_TENANT_ID": "project_id",
    "ADM_TENANT_NAME": "tenant",
    "USER_DOMAIN_NAME": "user_domain_name",
    "PROJECT_DOMAIN_NAME": "project_domain_name",
    "APPLICATION_CREDENTIAL_ID": "application_credential_id",
    "APPLICATION_CREDENTIAL_SECRET": "application_credential_secret",
    "CACERT": "cacert",
    "INSECURE": "insecure",
    "INTERFACE": "interface",
}
APP_CREDENTIAL_FIELDS = ("application_credential_id", "application_credential_secret")


def _celery(reader: _Reader) -> CelerySettings:
    try:
        routes = parse_routes(reader.get("celery", "ROUTES", ""))
    except RoutesError as exc:
        where = f"in section [celery] of {reader.path}"
        raise SettingsError(f"ERROR: Key ROUTES {where}: {exc}") from None
    port = reader.get_int("celery", "METRICS_PORT", 0)
    if not 0 <= port <= 65535:
        raise SettingsError(
            f"ERROR: Key METRICS_PORT in section [celery] of {reader.path} must be a port "
            f"number (1-65535, or 0 for none), not {port}"
        )
    return CelerySettings(reader.get("celery", "BROKER_URL", ""), routes, port)


def _openstack(reader: _Reader, environ: Mapping[str, str]) -> OpenStackSettings:
    """The service's own Keystone access: the keys, over the cloud named by CLOUD (if any).

    With an application credential, ADM_USER, ADM_PASS and the tenant are not needed.
    """
    section = "openstack"
    own = {
        name: Setting(reader.get(section, key, ""), reader.path, section, key)
        for key, name in OPENSTACK_KEYS.items()
        if reader.get(section, key, "")
    }
    cloud = reader.get(section, "CLOUD", "")
    layers: list[Mapping[str, Setting]] = [own]
    try:
        if cloud:
            setting = Setting(cloud, reader.path, section, "CLOUD")
            layers.append(credentials.cloud_layer(setting, environ)[0])
        _check_required(reader, layers)
        conn = credentials.resolve(layers, MissingTexts("", {}))
    except CredentialError as exc:
        raise _settings_error(reader, exc) from None
    roles = reader.get(section, "REQUIRED_ROLES", "admin")
    viewers = reader.get(section, "VIEWER_ROLES", "reader, member")
    if reader.parser.has_option(section, "REQUIRED_ROLES"):
        roles = reader.parser.get(section, "REQUIRED_ROLES")  # set but empty is an error
    required = role_list(roles)
    if not required:  # e.g. "," : every token would pass, whatever its roles
        raise SettingsError(
            f"ERROR: Key REQUIRED_ROLES in section [{section}] of {reader.path} names no role; "
            "give at least one (default: admin)"
        )
    return OpenStackSettings(
        keystone_url=keystone_v3_url(conn.keystone_url),
        user=conn.user,
        password=conn.password,
        tenant_id=conn.project_id,
        tenant_name=conn.tenant,
        user_domain_name=conn.user_domain_name,
        project_domain_name=conn.project_domain_name,
        required_roles=required,
        viewer_roles=role_list(viewers),
        cloud=cloud,
        application_credential_id=conn.application_credential_id,
        application_credential_name=conn.application_credential_name,
        application_credential_secret=conn.application_credential_secret,
        cacert=conn.cacert,
        insecure=conn.insecure,
        interface=conn.interface,
    )


def _check_required(reader: _Reader, layers: list[Mapping[str, Setting]]) -> None:
    """The 11.1 "missing key" errors, unless the cloud or an application credential fills in."""
    given = {name for layer in layers for name in layer}
    required = ["KEYSTONE_URL"]
    if not all(name in given for name in APP_CREDENTIAL_FIELDS):
        required += ["ADM_USER", "ADM_PASS"]
    for key in required:
        if OPENSTACK_KEYS[key] not in given:
            raise SettingsError(
                f"ERROR: Missing required key {key} in section [openstack] of {reader.path}"
            )
    needs_tenant = "password" in given and not all(n in given for n in APP_CREDENTIAL_FIELDS)
    if needs_tenant and not {"project_id", "tenant"} & given:
        raise SettingsError(
            f"ERROR: Missing required key ADM_TENANT_ID or ADM_TENANT_NAME in section "
            f"[openstack] of {reader.path}"
        )


def _settings_error(reader: _Reader, exc: CredentialError) -> SettingsError:
    s = exc.setting
    where = (s.source, s.section, s.key) if s else (reader.path, "openstack", exc.key)
    return SettingsError("ERROR: " + ConfigError(exc.problem, *where).render())


def role_list(text: str) -> tuple[str, ...]:
    return tuple(r.strip() for r in text.split(",") if r.strip())


def read_settings(
    settings_file: str, logging_file: str, environ: Mapping[str, str] | None = None
) -> Settings:
    """Parse fiware-glancesync.cfg; old keys and sections are accepted and ignored.

    ``environ`` only locates clouds.yaml (``OS_CLIENT_CONFIG_FILE``) for ``CLOUD``.
    """
    reader = _Reader(settings_file)
    openstack = _openstack(reader, os.environ if environ is None else environ)
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
        port=reader.get_int("glancesync", "PORT", Settings.port),
        database_url=reader.get("database", "URL", ""),
        workers=reader.get_int("gunicorn", "WORKERS", Settings.workers),
        pidfile=reader.get("gunicorn", "PIDFILE", Settings.pidfile),
        loglevel=reader.get("gunicorn", "LOGLEVEL", Settings.loglevel),
        metrics_token=reader.get("metrics", "TOKEN", ""),
        notifications=_notifications(reader),
        schedule=_schedule(reader),
        celery=_celery(reader),
        threads=reader.get_positive("gunicorn", "THREADS", Settings.threads),
        timeout=reader.get_positive("gunicorn", "TIMEOUT", Settings.timeout),
        graceful_timeout=reader.get_positive(
            "gunicorn", "GRACEFUL_TIMEOUT", Settings.graceful_timeout
        ),
        pool_size=reader.get_positive("database", "POOL_SIZE", Settings.pool_size),
    )


def load_settings(
    environ: Mapping[str, str] | None = None, fiware_dir: str = FIWARE_DIR
) -> Settings:
    """Locate both files (settings first, as the old server did) and read the settings."""
    environ = os.environ if environ is None else environ
    settings_file = locate(SETTINGS_VAR, SETTINGS_NAME, environ, fiware_dir)
    logging_file = locate(LOGGING_VAR, LOGGING_NAME, environ, fiware_dir)
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


def database_url(
    settings: Settings, environ: Mapping[str, str], flask_uri: str | None, instance_path: str
) -> str:
    """The SQLAlchemy URL in the order of 11.3, with PostgreSQL mapped to psycopg 3."""
    url = (
        environ.get(DATABASE_URL_VAR, "")
        or settings.database_url
        or flask_uri
        or _sqlite_url(environ.get(DATABASE_PATH_VAR, "") or instance_path)
    )
    return psycopg_url(url)


def _sqlite_url(folder: str) -> str:
    Path(folder).mkdir(parents=True, exist_ok=True)
    return "sqlite:///" + os.path.join(os.path.abspath(folder), DATABASE_FILE)


def psycopg_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` use psycopg 3 (psycopg2 is not a dependency)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
