"""Exceptions that carry the operator-facing messages of reference."""

from enum import StrEnum


class GlanceSyncError(Exception):
    """Base class of every error glancesync reports without a traceback."""


class ConfigError(GlanceSyncError):
    """A wrong or missing setting; the CLI prints ``ERROR: <message>`` and exits 2.

    ``source`` names where the setting came from (a file path, ``--config`` or
    ``environment``); ``section`` and ``key`` are added when known.
    """

    def __init__(self, problem: str, source: str = "", section: str = "", key: str = ""):
        self.problem = problem
        self.source = source
        self.section = section
        self.key = key
        super().__init__(self.render())

    def render(self) -> str:
        parts = []
        if self.source:
            parts.append(self.source)
        if self.section:
            where = f"[{self.section}]"
            if self.key:
                where += f" {self.key}"
            parts.append(where)
        elif self.key:
            parts.append(self.key)
        parts.append(self.problem)
        return ": ".join(parts)


class UsageError(GlanceSyncError):
    """A wrong command line (exit 2)."""


class ErrorKind(StrEnum):
    """What kind of failure a ``BackendError`` is, decided where it is raised.

    The values are the ``kind`` labels of the error metrics (docs/monitoring.md), so the
    service counts errors without reading their English text. ``AUTH`` and
    ``REGION_LIST`` are Keystone's; the others are a region's Glance.
    """

    AUTH = "authentication"
    REGION_LIST = "region_list"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    UNAVAILABLE = "unavailable"
    CONTENT = "content"
    NOT_FOUND = "not_found"
    REFUSED = "refused"
    QUOTA = "quota"
    CONFLICT = "conflict"
    CANCELLED = "cancelled"
    OTHER = "other"


class BackendError(GlanceSyncError):
    """A failure talking to a region; its message is the full log text of reference 6.6.

    ``kind`` says what failed (``ErrorKind``); a raise site that does not know leaves the
    class's default.
    """

    default_kind = ErrorKind.OTHER

    def __init__(self, message: str = "", kind: ErrorKind | None = None):
        super().__init__(message)
        self.kind = ErrorKind(kind) if kind is not None else self.default_kind

    def __reduce__(self):  # pickled (a Celery result) with its kind, not only its message
        return _rebuild, (type(self), str(self), self.kind)


def kind_of(error: BaseException) -> ErrorKind:
    """The kind of any failure: a ``BackendError``'s own, ``other`` for the unexpected."""
    return error.kind if isinstance(error, BackendError) else ErrorKind.OTHER


def _rebuild(cls: type, message: str, kind: ErrorKind) -> BackendError:
    error = cls.__new__(cls)
    BackendError.__init__(error, message, kind)
    return error


class RegionNotFound(BackendError):
    """The region is not known to its target."""

    default_kind = ErrorKind.NOT_FOUND


class Cancelled(BackendError):
    """The operator cancelled the sync; raised between actions or between two chunks of an
    upload. A ``BackendError`` so that retries never repeat it (``retry.is_transient``) and
    the half image is removed like after any other failed upload."""

    default_kind = ErrorKind.CANCELLED

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


class Interrupted(Cancelled):
    """SIGINT or SIGTERM reached the command (reference 6.10): the region stops like a
    cancel, and its ``ERROR:`` line says which signal and that the half image is gone."""

    def __init__(self, signal_name: str):
        self.signal_name = signal_name
        super().__init__(f"interrupted by {signal_name}; half-uploaded images deleted")
