"""Raw setting values: where each came from, how a true/false is spelled, and whether the
file that holds a secret is private.

Shared by the CLI's configuration (glancesync.config), the clouds.yaml layer and the
REST service's settings, so that the three read and check values the same way.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

TRUE = frozenset({"1", "yes", "true", "on"})
FALSE = frozenset({"0", "no", "false", "off"})

READABLE_SECRETS = (
    "Configuration file {path} holds credentials and is readable by other users; chmod 600 it"
)


class CredentialError(Exception):
    """A wrong combination; ``setting`` is the value to blame (None: nothing was set)."""

    def __init__(self, problem: str, setting: Setting | None = None, key: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.setting = setting
        self.key = key  # the key to name when nothing was set


@dataclass(frozen=True)
class Setting:
    """One raw value and where it came from, for error messages."""

    value: str
    source: str  # a file path, "--config" or "environment"
    section: str  # the INI section, or the cloud name of a clouds.yaml value
    key: str  # the key as written there (or the environment variable)


def parse_bool(text: str) -> bool:
    """``1/yes/true/on`` or ``0/no/false/off`` (any case); ValueError with the message
    the configuration shows for anything else."""
    value = text.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"invalid boolean value {text!r} (use true/false)")


def readable_secrets_warning(path: str) -> str | None:
    """The warning for a file that holds secrets and other local users can read, else None.

    Secrets in these files are at best base64-encoded, so the file mode is their only
    protection; a warning (not an error) keeps existing deployments running.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # a text named after a path that does not exist: nothing to protect
    if stat.S_ISREG(mode) and mode & (stat.S_IRGRP | stat.S_IROTH):
        return READABLE_SECRETS.format(path=path)
    return None
