"""Building the typed configuration from the raw settings, driven by the option table.

Every problem becomes a ``ConfigError`` that names where the bad setting came from, before
any network access, so the CLI can print one line and exit 2 (BEHAVIOUR.md 2.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from glancesync import transfer
from glancesync.condition import Condition, ConditionError, compile_condition
from glancesync.config import options
from glancesync.config.connection import MASTER, read_connection, some_source
from glancesync.config.model import Config, MainOptions, Target
from glancesync.config.options import MAIN_OPTIONS, TARGET_OPTIONS, Option
from glancesync.config.reader import DEFAULT, RawSettings, Section
from glancesync.errors import ConfigError

MAIN = "main"

MISSING_MASTER_REGION = (
    "A master region must be set in the configuration or OS_REGION_NAME must be defined"
)


def build_config(settings: RawSettings, environ: Mapping[str, str]) -> Config:
    names = [name for name in settings.sections() if name != MAIN]
    for name in names:
        if ":" in name:
            source = some_source(settings.section(name))
            raise ConfigError("a target name must not contain ':'", source=source, section=name)
    warnings = _unknown_keys(settings)
    main = _build_main(settings, environ)
    if MASTER not in names:
        names.insert(0, MASTER)  # D9: the master target is implied
    targets = {}
    for name in names:
        targets[name] = _build_target(settings.section(name), environ, warnings)
    return Config(main=main, targets=targets, source=settings.source, warnings=warnings)


def _unknown_keys(settings: RawSettings) -> list[str]:
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


def _build_main(settings: RawSettings, environ: Mapping[str, str]) -> MainOptions:
    section = settings.section(MAIN)
    master_region = section.string("master_region") or environ.get("OS_REGION_NAME", "").strip()
    if not master_region:
        raise section.missing("master_region", MISSING_MASTER_REGION)
    values = _typed(section, options.MAIN)
    values["master_region"] = master_region
    values["preferable_order"] = tuple(_drop_master_prefix(n) for n in values["preferable_order"])
    return MainOptions(**values)


def _drop_master_prefix(name: str) -> str:
    prefix, sep, rest = name.partition(":")
    return rest if sep and prefix == MASTER else name


def _build_target(section: Section, environ: Mapping[str, str], warnings: list[str]) -> Target:
    connection, cloud = read_connection(section, environ, warnings)
    values = _typed(section, options.TARGET)
    problem = transfer.misconfigured(section.name, values["transfer"])
    if problem is not None:
        raise section.error("transfer", problem)
    return Target(name=section.name, connection=connection, cloud=cloud, **values)


def _typed(section: Section, table: Mapping[str, Option]) -> dict[str, Any]:
    """Each option of ``table`` read by its kind, in table order (the first bad key is the
    one reported); options not stored are still validated."""
    values = {}
    for key, option in table.items():
        if option.kind == options.CONNECTION:
            continue
        value = _read(section, option)
        if option.stored:
            values[key] = value
    return values


def _read(section: Section, option: Option) -> Any:
    key, kind = option.key, option.kind
    if kind == options.TEXT:
        return section.string(key) or option.default
    if kind == options.LIST:
        return section.items(key)
    if kind == options.SET:
        return frozenset(section.items(key))
    if kind == options.BOOL:
        return section.boolean(key, option.default)
    if kind == options.INT:
        return section.integer(key, option.default, minimum=option.minimum)
    if kind == options.CONDITION:
        return _condition(section)
    if kind == options.CHOICE:
        return _choice(section, option)
    raise AssertionError(f"option {key} has an unknown kind {kind!r}")


def _choice(section: Section, option: Option) -> str:
    """One of the option's words (case-insensitive); blank means unset."""
    text = (section.string(option.key) or "").lower()
    if text and text not in option.choices:
        allowed = " or ".join(option.choices)
        raise section.error(option.key, f"must be {allowed}, not {text!r}")
    return text or option.default


def _condition(section: Section) -> Condition | None:
    """Compiled at load time for every target, used or not (D10); blank means unset."""
    text = section.string("metadata_condition")
    if text is None:
        return None
    try:
        return compile_condition(text)
    except ConditionError as exc:
        raise section.error("metadata_condition", " ".join(str(exc).split())) from None
