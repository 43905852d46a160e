"""Core configuration: the INI file, ``--config`` overrides and OS_* environment.

BEHAVIOUR.md section 2. Everything is validated here, before any network access, and every
problem becomes a :class:`~glancesync.errors.ConfigError` that names where the bad setting
came from, so the CLI can print one line and exit 2.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from glancesync import credentials
from glancesync.condition import Condition, ConditionError, compile_condition
from glancesync.credentials import Connection, CredentialError, MissingTexts, Setting
from glancesync.errors import ConfigError, UsageError

DEFAULT_IMAGES_DIR = "/var/lib/glance/images"
DEFAULT_CONFIG_PATH = "/etc/glancesync.conf"


@dataclass
class Target:
    """One credential (Keystone, user, project) and the sync rules for its regions."""

    name: str
    user: str = ""
    password: str = field(default="", repr=False)  # never in a repr, log or traceback
    keystone_url: str = ""
    tenant: str = ""
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    forcesyncs: frozenset[str] = frozenset()
    replace: frozenset[str] = frozenset()
    rename: frozenset[str] = frozenset()
    dontupdate: frozenset[str] = frozenset()
    ignore_regions: tuple[str, ...] = ()
    metadata_condition: Condition | None = None
    metadata_set: frozenset[str] = frozenset()
    only_tenant_images: bool = True
    support_obsolete_images: bool = True
    obsolete_syncprops: tuple[str, ...] = ()
    # Seconds allowed to each page request of a listing (pages of 1000), not to the whole
    # listing (D26): a region of 10,000 images takes 10 requests, plus the hidden pass.
    list_images_timeout: int = 30
    data_timeout: int = 600
    tenant_id: str | None = None
    leftover_age: int = 3600  # seconds before another run's marked image is a leftover
    # Issue 13: ids beside the names, application credential, TLS, endpoint interface.
    project_id: str = ""
    user_domain_id: str = ""
    project_domain_id: str = ""
    application_credential_id: str = ""
    application_credential_name: str = ""
    application_credential_secret: str = field(default="", repr=False)
    cacert: str = ""
    insecure: bool = False
    interface: str = "public"
    cloud: str = ""

    def connection(self) -> Connection:
        """The Keystone access of this target (``glancesync.credentials``)."""
        return Connection(
            keystone_url=self.keystone_url,
            user=self.user,
            password=self.password,
            tenant=self.tenant,
            project_id=self.project_id,
            user_domain_name=self.user_domain_name,
            user_domain_id=self.user_domain_id,
            project_domain_name=self.project_domain_name,
            project_domain_id=self.project_domain_id,
            application_credential_id=self.application_credential_id,
            application_credential_name=self.application_credential_name,
            application_credential_secret=self.application_credential_secret,
            cacert=self.cacert,
            insecure=self.insecure,
            interface=self.interface,
        )


@dataclass
class MainOptions:
    master_region: str
    preferable_order: tuple[str, ...] = ()
    max_children: int = 1
    images_dir: str = DEFAULT_IMAGES_DIR
    lock_dir: str = "/run/lock/glancesync"  # region lock files (glancesync.regionlock)
    lock_wait: int = 0  # seconds a run waits for a region another run is syncing
    # The fan-out's spool (glancesync.fanout): folder ("" = the system temp folder), MiB cap
    spool_dir: str = ""
    spool_max_mb: int = 2048


@dataclass
class Config:
    main: MainOptions
    # In configuration-file order; "master" is always present.
    targets: dict[str, Target] = field(default_factory=dict)
    # Where the settings came from: a file path, the name given to a text, or "defaults".
    source: str = ""
    # Warnings found while loading (unknown keys, v2.0 URL rewrites), logged by the caller.
    warnings: list[str] = field(default_factory=list)

    @property
    def master(self) -> Target:
        return self.targets["master"]


# --- option tables (BEHAVIOUR.md 2.3, 2.4) ----------------------------------------------

MAIN = "main"
DEFAULT = "DEFAULT"
MASTER = "master"
FROM_OVERRIDE = "--config"
FROM_ENVIRONMENT = "environment"

MAIN_OPTIONS = frozenset(
    {
        "master_region",
        "preferable_order",
        "max_children",
        "images_dir",
        "lock_dir",
        "lock_wait",
        "spool_dir",
        "spool_max_mb",
    }
)
TARGET_OPTIONS = (
    frozenset(
        {
            "credential",
            "user",
            "password",
            "keystone_url",
            "tenant",
            "project",
            "user_domain_name",
            "project_domain_name",
            "forcesyncs",
            "replace",
            "rename",
            "dontupdate",
            "ignore_regions",
            "metadata_condition",
            "metadata_set",
            "only_tenant_images",
            "support_obsolete_images",
            "obsolete_syncprops",
            "list_images_timeout",
            "leftover_age",
            "data_timeout",
            "tenant_id",
            "use_keystone_v3",
        }
    )
    | credentials.CONNECTION_OPTIONS
)

_TRUE = frozenset({"1", "yes", "true", "on"})
_FALSE = frozenset({"0", "no", "false", "off"})
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_KEYSTONE_V2 = re.compile(r"/v2\.0/?$")

MISSING_MASTER_REGION = (
    "A master region must be set in the configuration or OS_REGION_NAME must be defined"
)
MISSING_CREDENTIAL = (
    "A credential parameter is mandatory for each target "
    "(or the set: user, password, tenant, keystone_url)"
)
MISSING_MASTER_FIELD = {
    "user": "A username for master target must be provided in configuration "
    "or OS_USERNAME must be defined",
    "password": "A password for master target must be provided in configuration "
    "or OS_PASSWORD must be defined. "
    "In the configuration file, passwords must be encoded with base64",
    "keystone_url": "A keystone url for master target must be provided in configuration "
    "or OS_AUTH_URL must be defined.",
    "tenant": "A tenant name for master target must be provided in configuration "
    "or OS_TENANT_NAME must be defined.",
}
CREDENTIAL_FIELDS = ("user", "password", "keystone_url", "tenant")
OVERRIDE_FORMAT = "config options must have the format key=value"


# --- raw settings ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Value:
    """One raw setting and where it came from (a file path, ``--config`` or ``environment``)."""

    text: str
    source: str


@dataclass
class _Settings:
    """The raw key/value pairs of every section, before typing and validation.

    The file and the overrides are kept apart so that precedence and error sources stay
    exact: section override > bare override > file section > file [DEFAULT].
    """

    source: str
    file: dict[str, dict[str, str]] = field(default_factory=dict)
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def base_source(self) -> str:
        return self.source if self.file else FROM_ENVIRONMENT

    def section(self, name: str) -> _Section:
        return _Section(name, self.effective(name), self.base_source)

    def sections(self) -> list[str]:
        """Every section but DEFAULT, file order first, then sections created by overrides."""
        names = [name for name in self.file if name != DEFAULT]
        names += [name for name in self.overrides if name != DEFAULT and name not in self.file]
        return names

    def own(self, section: str) -> dict[str, _Value]:
        """Keys written in the section itself (not inherited from DEFAULT)."""
        values = {k: _Value(v, self.source) for k, v in self.file.get(section, {}).items()}
        values.update(
            {k: _Value(v, FROM_OVERRIDE) for k, v in self.overrides.get(section, {}).items()}
        )
        return values

    def effective(self, section: str) -> dict[str, _Value]:
        """INI semantics, with overrides on top of the whole file (2.6)."""
        values = {k: _Value(v, self.source) for k, v in self.file.get(DEFAULT, {}).items()}
        values.update({k: _Value(v, self.source) for k, v in self.file.get(section, {}).items()})
        values.update(
            {k: _Value(v, FROM_OVERRIDE) for k, v in self.overrides.get(DEFAULT, {}).items()}
        )
        values.update(
            {k: _Value(v, FROM_OVERRIDE) for k, v in self.overrides.get(section, {}).items()}
        )
        return values


class _Section:
    """Typed access to one section's effective values; errors name the section and key."""

    def __init__(self, name: str, values: Mapping[str, _Value], base_source: str):
        self.name = name
        self.values = values
        # Blamed for a missing setting: the file when there is one, else the environment.
        self.base_source = base_source

    def error(self, key: str, problem: str) -> ConfigError:
        value = self.values.get(key)
        source = value.source if value else ""
        return ConfigError(problem, source=source, section=self.name, key=key)

    def missing(self, key: str, problem: str) -> ConfigError:
        """An error about a setting found nowhere (key None: about the whole section)."""
        return ConfigError(problem, source=self.base_source, section=self.name, key=key)

    def string(self, key: str) -> str | None:
        """The stripped value, or None when absent or blank (blank means unset)."""
        value = self.values.get(key)
        if value is None or not value.text.strip():
            return None
        return value.text.strip()

    def items(self, key: str) -> tuple[str, ...]:
        value = self.values.get(key)
        return split_list(value.text) if value else ()

    def boolean(self, key: str, default: bool) -> bool:
        value = self.values.get(key)
        if value is None:
            return default
        text = value.text.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise self.error(key, f"invalid boolean value {value.text!r} (use true/false)")

    def integer(self, key: str, default: int, minimum: int) -> int:
        value = self.values.get(key)
        if value is None:
            return default
        text = value.text.strip()
        if not _INTEGER.fullmatch(text):
            raise self.error(key, f"invalid integer value {value.text!r}")
        number = int(text)
        if number < minimum:
            raise self.error(key, f"the value must be at least {minimum}, not {number}")
        return number


def split_list(text: str) -> tuple[str, ...]:
    """Comma-separated items, stripped, empty items ignored (``nid , type,`` -> nid, type)."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


# --- public API ------------------------------------------------------------------------


def parse_overrides(items: Iterable[str]) -> list[tuple[str | None, str, str]]:
    """Split ``--config`` items (D8) into (section or None for DEFAULT, key, value).

    Split at the first ``=`` so values may contain ``=``, then the key at the first ``.``.
    Keys are lower-cased like the INI file's keys.
    """
    parsed: list[tuple[str | None, str, str]] = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(OVERRIDE_FORMAT)
        section: str | None = None
        if "." in key:
            section, _, key = (part.strip() for part in key.partition("."))
            if not section or not key:
                raise UsageError(OVERRIDE_FORMAT)
            if section == DEFAULT:
                section = None
        parsed.append((section, key.lower(), value.strip()))
    return parsed


def find_config_file(
    environ: Mapping[str, str] | None = None, path: str | None = None
) -> str | None:
    """The file to read, in the order of BEHAVIOUR.md 2.1 (None: no file, D9)."""
    environ = os.environ if environ is None else environ
    named = environ.get("GLANCESYNC_CONFIG")
    if named:
        if not os.path.isfile(named) or not os.access(named, os.R_OK):
            raise ConfigError(
                f"the configuration file {named} does not exist or cannot be read",
                source=FROM_ENVIRONMENT,
                key="GLANCESYNC_CONFIG",
            )
        return named
    if path:
        return path
    if os.path.isfile(DEFAULT_CONFIG_PATH):
        return DEFAULT_CONFIG_PATH
    return None


def load_config(
    text: str | None = None,
    path: str | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, merge and validate the whole configuration; raise ConfigError on any problem.

    With ``text`` the file lookup is skipped (``path``, if given, only names the text in
    messages). Overrides that are not ``key=value`` raise UsageError.
    """
    environ = os.environ if environ is None else environ
    parsed_overrides = parse_overrides(overrides)
    if text is not None:
        source = path or "<text>"
    else:
        path = find_config_file(environ, path)
        source = path or "defaults"
        text = _read_file(path) if path else ""
    settings = _Settings(source=source, file=_parse_ini(text, source))
    for section, key, value in parsed_overrides:
        settings.overrides.setdefault(section or DEFAULT, {})[key] = value
    config = _build_config(settings, environ)
    if path:
        config.warnings.extend(permission_warnings(path, settings.file))
    return config


# Keys whose value is a secret (the password, or the credential that embeds it).
SECRET_KEYS = frozenset({"credential", "password", "application_credential_secret"})
_READABLE_BY_OTHERS = stat.S_IRGRP | stat.S_IROTH
READABLE_SECRETS = (
    "Configuration file {path} holds credentials and is readable by other users; chmod 600 it"
)


def permission_warnings(path: str, file: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Warn when a file that holds passwords can be read by other local users.

    Credentials in the file are only base64-encoded, so the file mode is their only
    protection; a warning (not an error) keeps existing deployments running.
    """
    holds_secrets = any(
        value.strip() for keys in file.values() for key, value in keys.items() if key in SECRET_KEYS
    )
    if not holds_secrets:
        return []
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return []  # a text named after a path that does not exist: nothing to protect
    if not stat.S_ISREG(mode) or not mode & _READABLE_BY_OTHERS:
        return []
    return [READABLE_SECRETS.format(path=path)]


# --- reading ---------------------------------------------------------------------------


def _read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", source=path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the file is not valid UTF-8: {exc.reason}", source=path) from None


def _parse_ini(text: str, source: str) -> dict[str, dict[str, str]]:
    """Sections and their own keys; [DEFAULT] is read as a plain section (merged later)."""
    # A default_section name that no header can match keeps [DEFAULT] apart, so that each
    # value's origin (own or inherited) stays known.
    parser = configparser.ConfigParser(
        interpolation=None, strict=True, default_section="\n(no default section)\n"
    )
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise ConfigError(_describe_ini_error(exc), source=source) from None
    return {name: dict(parser.items(name, raw=True)) for name in parser.sections()}


def _describe_ini_error(exc: configparser.Error) -> str:
    """One line for the CLI's ``ERROR:`` message (configparser's own texts span lines)."""
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"section [{exc.section}] is duplicated (line {exc.lineno})"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"option {exc.option} is duplicated in section [{exc.section}] (line {exc.lineno})"
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno}: a section header is expected before {exc.line.strip()!r}"
    if isinstance(exc, configparser.ParsingError):
        # configparser already gives each line as its repr.
        lines = ", ".join(f"line {lineno}: {line}" for lineno, line in exc.errors)
        return f"lines that are not key = value: {lines}"
    return " ".join(str(exc).split())


# --- validation ------------------------------------------------------------------------


def _build_config(settings: _Settings, environ: Mapping[str, str]) -> Config:
    names = [name for name in settings.sections() if name != MAIN]
    for name in names:
        if ":" in name:
            source = _some_source(settings.section(name))
            raise ConfigError("a target name must not contain ':'", source=source, section=name)
    warnings = _unknown_keys(settings)
    main = _build_main(settings, environ)
    if MASTER not in names:
        names.insert(0, MASTER)  # D9: the master target is implied
    targets = {}
    for name in names:
        targets[name] = _build_target(settings.section(name), environ, warnings)
    return Config(main=main, targets=targets, source=settings.source, warnings=warnings)


def _unknown_keys(settings: _Settings) -> list[str]:
    """E4 warnings. DEFAULT keys are used by main and by every target, so both tables count."""
    warnings = []
    default_keys = {**settings.file.get(DEFAULT, {}), **settings.overrides.get(DEFAULT, {})}
    for key in default_keys:
        if key not in TARGET_OPTIONS and key not in MAIN_OPTIONS:
            warnings.append(f"Unknown option {key} in section [{DEFAULT}]")
    for name in settings.sections():
        known = MAIN_OPTIONS if name == MAIN else TARGET_OPTIONS
        for key in settings.own(name):
            if key not in known:
                warnings.append(f"Unknown option {key} in section [{name}]")
    return warnings


def _build_main(settings: _Settings, environ: Mapping[str, str]) -> MainOptions:
    section = settings.section(MAIN)
    master_region = section.string("master_region") or environ.get("OS_REGION_NAME", "").strip()
    if not master_region:
        raise section.missing("master_region", MISSING_MASTER_REGION)
    return MainOptions(
        master_region=master_region,
        preferable_order=tuple(_drop_master_prefix(n) for n in section.items("preferable_order")),
        max_children=section.integer("max_children", 1, minimum=1),
        images_dir=section.string("images_dir") or DEFAULT_IMAGES_DIR,
        lock_dir=section.string("lock_dir") or "/run/lock/glancesync",
        lock_wait=section.integer("lock_wait", 0, minimum=0),
        spool_dir=section.string("spool_dir") or "",
        spool_max_mb=section.integer("spool_max_mb", 2048, minimum=16),
    )


def _drop_master_prefix(name: str) -> str:
    prefix, sep, rest = name.partition(":")
    return rest if sep and prefix == MASTER else name


def _build_target(section: _Section, environ: Mapping[str, str], warnings: list[str]) -> Target:
    name = section.name
    env = environ if name == MASTER else {}
    conn, cloud = _connection(section, env, environ, warnings)
    section.boolean("use_keystone_v3", True)  # accepted (and validated), otherwise ignored (D1)
    if conn.insecure:
        warnings.append(INSECURE_WARNING.format(target=name))
    return Target(
        name=name,
        user=conn.user,
        password=conn.password,
        keystone_url=_keystone_v3(conn.keystone_url, warnings),
        tenant=conn.tenant,
        user_domain_name=conn.user_domain_name,
        project_domain_name=conn.project_domain_name,
        forcesyncs=frozenset(section.items("forcesyncs")),
        replace=frozenset(section.items("replace")),
        rename=frozenset(section.items("rename")),
        dontupdate=frozenset(section.items("dontupdate")),
        ignore_regions=section.items("ignore_regions"),
        metadata_condition=_condition(section),
        metadata_set=frozenset(section.items("metadata_set")),
        only_tenant_images=section.boolean("only_tenant_images", True),
        support_obsolete_images=section.boolean("support_obsolete_images", True),
        obsolete_syncprops=section.items("obsolete_syncprops"),
        list_images_timeout=section.integer("list_images_timeout", 30, minimum=1),
        data_timeout=section.integer("data_timeout", 600, minimum=1),
        tenant_id=section.string("tenant_id"),
        leftover_age=section.integer("leftover_age", 3600, minimum=0),
        project_id=conn.project_id,
        user_domain_id=conn.user_domain_id,
        project_domain_id=conn.project_domain_id,
        application_credential_id=conn.application_credential_id,
        application_credential_name=conn.application_credential_name,
        application_credential_secret=conn.application_credential_secret,
        cacert=conn.cacert,
        insecure=conn.insecure,
        interface=conn.interface,
        cloud=cloud,
    )


INSECURE_WARNING = "Target {target}: insecure = true, TLS certificates are not verified"


def _connection(
    section: _Section, env: Mapping[str, str], environ: Mapping[str, str], warnings: list[str]
) -> tuple[Connection, str]:
    """Credential, TLS and interface by the layers of ``glancesync.credentials``.

    ``env`` is empty unless master; ``environ`` always locates the clouds.yaml files.
    """
    own = _section_layer(section)
    env_layer = credentials.environment_layer(env, section.name)
    cloud = own.pop("cloud", None) or env_layer.get("cloud")
    layers: list[Mapping[str, Setting]] = [own]
    try:
        if cloud is not None:
            cloud_fields, cloud_warnings = credentials.cloud_layer(cloud, environ)
            layers.append(cloud_fields)
            warnings.extend(w for w in cloud_warnings if w not in warnings)
        if any(key.startswith("application_credential") for lay in layers for key in lay):
            # OS_AUTH_TYPE describes the openrc's own credential, not the file's.
            env_layer.pop("auth_type", None)
        layers.append(env_layer)
        missing = (
            MissingTexts(MISSING_CREDENTIAL)
            if section.name != MASTER
            else MissingTexts(
                MISSING_CREDENTIAL,
                MISSING_MASTER_FIELD,
                MISSING_MASTER_FIELD["keystone_url"],
                keystone_url_key="",
            )
        )
        conn = credentials.resolve(layers, missing)
    except CredentialError as exc:
        raise _config_error(section, exc) from None
    return conn, cloud.value if cloud else ""


def _config_error(section: _Section, exc: CredentialError) -> ConfigError:
    """Name the file, section and key of the setting to blame (BEHAVIOUR.md 2.1)."""
    if exc.setting is not None:
        s = exc.setting
        return ConfigError(exc.problem, source=s.source, section=s.section, key=s.key)
    if exc.problem == MISSING_CREDENTIAL:
        return ConfigError(exc.problem, source=_some_source(section), section=section.name)
    return section.missing(exc.key, exc.problem)


_SECTION_FIELDS = (
    "cloud",
    "project_id",
    "user_domain_name",
    "user_domain_id",
    "project_domain_name",
    "project_domain_id",
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret",
    "cacert",
    "insecure",
    "interface",
)


def _section_layer(section: _Section) -> dict[str, Setting]:
    """The section's own connection keys; the credential rules 1-2 of 2.4 give the four
    password fields (plain keys when all four are there, else ``credential``)."""

    def setting(key: str, value: str | None = None) -> Setting:
        raw = section.values[key]
        text = raw.text.strip() if value is None else value
        return Setting(text, raw.source, section.name, key)

    layer = {key: setting(key) for key in _SECTION_FIELDS if section.string(key)}
    plain = {key: section.string(key) for key in ("user", "password", "keystone_url")}
    tenant_key = "tenant" if section.string("tenant") else "project"
    plain["tenant"] = section.string(tenant_key)
    credential = section.string("credential")
    if credential and not all(plain.values()):
        fields = _split_credential(section, credential)
        for key, value in zip(CREDENTIAL_FIELDS, fields, strict=True):
            layer[key] = setting("credential", value)
        return layer
    for key, value in plain.items():
        if value:
            layer[key] = setting(tenant_key if key == "tenant" else key)
    return layer


def _some_source(section: _Section) -> str:
    """Where a section came from: ``--config`` when only overrides define it."""
    sources = {value.source for value in section.values.values()}
    return FROM_OVERRIDE if sources == {FROM_OVERRIDE} else section.base_source


def _split_credential(section: _Section, credential: str) -> tuple[str, str, str, str]:
    """``user,base64(password),keystone_url,tenant_name`` (base64 has no commas to confuse)."""
    parts = [part.strip() for part in credential.split(",")]
    if len(parts) != 4:
        raise section.error(
            "credential",
            f"credential must have 4 comma-separated fields "
            f"(user,base64(password),keystone_url,tenant_name), not {len(parts)}",
        )
    user, encoded, keystone_url, tenant = parts
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise section.error(
            "credential", "the password in credential is not valid base64"
        ) from None
    try:
        password = decoded.decode("utf-8")
    except UnicodeDecodeError:
        problem = "the password in credential is not base64-encoded UTF-8 text"
        raise section.error("credential", problem) from None
    return user, password, keystone_url, tenant


def _keystone_v3(url: str, warnings: list[str]) -> str:
    """D1: only Keystone v3 is spoken, so a /v2.0 URL is rewritten (with a warning)."""
    if not _KEYSTONE_V2.search(url):
        return url
    new = _KEYSTONE_V2.sub("/v3", url)
    warnings.append(f"keystone_url {url} uses Keystone v2.0; using {new} instead")
    return new


def _condition(section: _Section) -> Condition | None:
    """Compiled at load time for every target, used or not (D10); blank means unset."""
    text = section.string("metadata_condition")
    if text is None:
        return None
    try:
        return compile_condition(text)
    except ConditionError as exc:
        raise section.error("metadata_condition", " ".join(str(exc).split())) from None
