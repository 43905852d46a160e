"""Reading the INI file and the ``--config`` overrides, keeping where each value came from.

Every value keeps its origin (a file path, ``--config`` or ``environment``) so that an
error names the file, section and key to fix (reference 2.1). Typing is by kind
(string, list, boolean, integer); which key has which kind is the option table's
(``glancesync.config.options``).
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from glancesync.credentials import parse_bool
from glancesync.errors import ConfigError, UsageError

# Searched in this order when no file is named: the layout of an installed service
# (/etc/glancesync/, beside the service's files), then the old tool's path.
ETC_CONFIG_PATH = "/etc/glancesync/glancesync.conf"
DEFAULT_CONFIG_PATH = "/etc/glancesync.conf"
DEFAULT = "DEFAULT"
FROM_OVERRIDE = "--config"
FROM_ENVIRONMENT = "environment"
OVERRIDE_FORMAT = "config options must have the format key=value"

_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


@dataclass(frozen=True)
class Value:
    """One raw setting and where it came from (a file path, ``--config`` or ``environment``)."""

    text: str
    source: str


@dataclass
class RawSettings:
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

    def section(self, name: str) -> Section:
        return Section(name, self.effective(name), self.base_source)

    def sections(self) -> list[str]:
        """Every section but DEFAULT, file order first, then sections created by overrides."""
        names = [name for name in self.file if name != DEFAULT]
        names += [name for name in self.overrides if name != DEFAULT and name not in self.file]
        return names

    def own(self, section: str) -> dict[str, Value]:
        """Keys written in the section itself (not inherited from DEFAULT)."""
        values = {k: Value(v, self.source) for k, v in self.file.get(section, {}).items()}
        values.update(
            {k: Value(v, FROM_OVERRIDE) for k, v in self.overrides.get(section, {}).items()}
        )
        return values

    def effective(self, section: str) -> dict[str, Value]:
        """INI semantics, with overrides on top of the whole file (2.6)."""
        values = {k: Value(v, self.source) for k, v in self.file.get(DEFAULT, {}).items()}
        values.update({k: Value(v, self.source) for k, v in self.file.get(section, {}).items()})
        values.update(
            {k: Value(v, FROM_OVERRIDE) for k, v in self.overrides.get(DEFAULT, {}).items()}
        )
        values.update(
            {k: Value(v, FROM_OVERRIDE) for k, v in self.overrides.get(section, {}).items()}
        )
        return values


class Section:
    """Typed access to one section's effective values; errors name the section and key."""

    def __init__(self, name: str, values: Mapping[str, Value], base_source: str):
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
        try:
            return parse_bool(value.text)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

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


def parse_overrides(items: Iterable[str]) -> list[tuple[str | None, str, str]]:
    """Split ``--config`` items (reference 2.6) into (section or None for DEFAULT, key, value).

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
    """The file to read, in the order of reference 2.1 (None: no file, reference 2.5)."""
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
    for candidate in (ETC_CONFIG_PATH, DEFAULT_CONFIG_PATH):
        if os.path.isfile(candidate):
            return candidate
    return None


def read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", source=path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the file is not valid UTF-8: {exc.reason}", source=path) from None


def parse_ini(text: str, source: str) -> dict[str, dict[str, str]]:
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
