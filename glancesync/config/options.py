"""The option table: every key of the configuration file, its type, default and bounds,
written once (reference 2.3, 2.4; docs/connections.md).

The model's dataclass defaults (``glancesync.config.model``), the unknown-key warnings and
the typed reading of each section (``glancesync.config.building``) all come from here, so
a new option or a changed default is one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from glancesync import credentials

DEFAULT_IMAGES_DIR = "/var/lib/glance/images"

# Kinds of option: how ``building`` reads the text of the key.
TEXT = "text"  # stripped; blank is unset (the default)
LIST = "list"  # comma-separated items, as a tuple
SET = "set"  # comma-separated items, as a frozenset
BOOL = "bool"
INT = "int"  # with a minimum
CONDITION = "condition"  # a metadata condition, compiled at load time
CHOICE = "choice"  # one of ``choices``; blank is unset (the default)
CONNECTION = "connection"  # read by the credential layers (glancesync.config.connection)


@dataclass(frozen=True)
class Option:
    """One key: its kind, its default, its lower bound (integers), and the model field it
    fills (None: validated but not kept, or read by the connection layers)."""

    key: str
    kind: str
    default: Any = None
    minimum: int = 0
    stored: bool = True
    choices: tuple[str, ...] = ()


def _table(*options: Option) -> dict[str, Option]:
    return {option.key: option for option in options}


# In the order they are checked, so the first bad key of a section is the one reported.
MAIN = _table(
    Option("master_region", TEXT, ""),
    Option("preferable_order", LIST, ()),
    Option("max_children", INT, 1, minimum=1),
    Option("images_dir", TEXT, DEFAULT_IMAGES_DIR),
    Option("lock_dir", TEXT, "/run/lock/glancesync"),  # region lock files
    Option("lock_wait", INT, 0, minimum=0),  # seconds a run waits for a busy region
    Option("spool_dir", TEXT, ""),  # the fan-out's spool ("": the system temp folder)
    Option("spool_max_mb", INT, 2048, minimum=16),
)

_PASSWORD_KEYS = ("credential", "user", "password", "keystone_url", "tenant", "project")
_DOMAIN_NAMES = ("user_domain_name", "project_domain_name")

TARGET = _table(
    *(Option(key, CONNECTION, stored=False) for key in _PASSWORD_KEYS + _DOMAIN_NAMES),
    *(Option(key, CONNECTION, stored=False) for key in sorted(credentials.CONNECTION_OPTIONS)),
    # validated, otherwise ignored: only Keystone v3 is spoken (reference 2.4)
    Option("use_keystone_v3", BOOL, True, stored=False),
    Option("forcesyncs", SET, frozenset()),
    Option("replace", SET, frozenset()),
    Option("rename", SET, frozenset()),
    Option("dontupdate", SET, frozenset()),
    Option("ignore_regions", LIST, ()),
    Option("metadata_condition", CONDITION),
    Option("metadata_set", SET, frozenset()),
    Option("only_tenant_images", BOOL, True),
    Option("support_obsolete_images", BOOL, True),
    Option("obsolete_syncprops", LIST, ()),
    # Seconds allowed to each page request of a listing (pages of 1000), not to the whole
    # listing (reference 2.4): a region of 10,000 images takes 10 requests, plus the hidden pass.
    Option("list_images_timeout", INT, 30, minimum=1),
    Option("data_timeout", INT, 600, minimum=1),
    Option("tenant_id", TEXT, None),
    Option("leftover_age", INT, 3600, minimum=0),  # seconds before a marked image is left over
    # Members of shared images (glancesync.members): unset is ``same`` in the master's
    # target, ``none`` elsewhere; accept_members copies the master's member statuses.
    Option("members", CHOICE, None, choices=("same", "by-name", "none")),
    Option("accept_members", BOOL, False),
    # Renamed old versions kept per name (glancesync.retention); unset keeps them all.
    Option("keep_old", INT, None, minimum=0),
    # The disk format this target's copies are converted to (glancesync.convert; README
    # "Converting images"); "" copies every image in its master format.
    Option("convert_to", CHOICE, "", choices=("raw", "qcow2")),
    # How copies travel (glancesync.transfer): through this host, or server-side
    Option("transfer", CHOICE, "proxy", choices=("proxy", "glance-download", "auto")),
    Option("import_timeout", INT, 1800, minimum=1),  # seconds one server-side import may take
    # The endpoint interface the region's Glance fetches the master from ("": the target's)
    Option("import_interface", TEXT, ""),
    # The stores of a multi-store Glance every copy must be in (glancesync.stores; README
    # "Multi-store regions"): uploaded into the first, copied by Glance into the others.
    Option("stores", LIST, ()),
    Option("all_stores", BOOL, False),  # every store the region's Glance has
)

MAIN_OPTIONS = frozenset(MAIN)
TARGET_OPTIONS = frozenset(TARGET)
# The section's own connection keys beside the four of a password credential (2.4 rules 1-2).
SECTION_CONNECTION_KEYS = tuple(
    key for key, option in TARGET.items() if option.kind == CONNECTION and key not in _PASSWORD_KEYS
)


def default(table: dict[str, Option], key: str) -> Any:
    """The default of ``key``, for the model's dataclass fields."""
    return table[key].default
