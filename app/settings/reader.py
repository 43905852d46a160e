"""Reading fiware-glancesync.cfg: typed keys, every error naming the file, section and key.

Each section's settings (``app.settings.sections``, ``app.settings.openstack``) are read
through one ``Reader``, so a wrong setting stops the server at start with one message
that says where to look.
"""

from __future__ import annotations

import configparser


class SettingsError(Exception):
    """A server setting that stops the service; the message is printed as it is."""


class Reader:
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
