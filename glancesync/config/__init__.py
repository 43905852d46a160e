"""Core configuration: the INI file, ``--config`` overrides and OS_* environment.

reference section 2. Everything is validated here, before any network access, and every
problem becomes a :class:`~glancesync.errors.ConfigError` that names where the bad setting
came from, so the CLI can print one line and exit 2.

- ``model``: ``Config``, ``MainOptions``, ``Target`` (sync rules + a ``Connection``);
- ``options``: the option table (each key's kind, default and bounds, once);
- ``reader``: the INI file and the overrides, with each value's origin;
- ``connection``: a target's connection from its section, cloud and environment;
- ``building``: the typed ``Config`` from the raw settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from glancesync.config.building import build_config
from glancesync.config.model import Config, MainOptions, Target
from glancesync.config.options import DEFAULT_IMAGES_DIR, MAIN_OPTIONS, TARGET_OPTIONS
from glancesync.config.reader import (
    DEFAULT,
    RawSettings,
    find_config_file,
    parse_ini,
    parse_overrides,
    read_file,
    split_list,
)
from glancesync.credentials import readable_secrets_warning

__all__ = [
    "DEFAULT_IMAGES_DIR",
    "MAIN_OPTIONS",
    "SECRET_KEYS",
    "TARGET_OPTIONS",
    "Config",
    "MainOptions",
    "Target",
    "find_config_file",
    "load_config",
    "parse_overrides",
    "permission_warnings",
    "split_list",
]

# Keys whose value is a secret (the password, or the credential that embeds it).
SECRET_KEYS = frozenset({"credential", "password", "application_credential_secret"})


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
        text = read_file(path) if path else ""
    settings = RawSettings(source=source, file=parse_ini(text, source))
    for section, key, value in parsed_overrides:
        settings.overrides.setdefault(section or DEFAULT, {})[key] = value
    config = build_config(settings, environ)
    if path:
        config.warnings.extend(permission_warnings(path, settings.file))
    return config


def permission_warnings(path: str, file: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Warn when a file that holds passwords can be read by other local users."""
    holds_secrets = any(
        value.strip() for keys in file.values() for key, value in keys.items() if key in SECRET_KEYS
    )
    warning = readable_secrets_warning(path) if holds_secrets else None
    return [warning] if warning else []
