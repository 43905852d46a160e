"""The CSV backup format (reference 8.2): what --make-backup writes and the mock replays.

One file ``backup_<F>.csv`` per region, one image per line, nine fields, no header.
Files are edited by hand for scenarios, so loading is strict and every problem becomes a
``ConfigError`` naming the file and line (the CLI exits 2) - never a traceback.

Cells a spreadsheet would take for a formula (starting with ``=``, ``+``, ``-`` or ``@``,
after any ``'``) are written with one more leading ``'`` and read back without it (docs/
formats, "CSV backups"). Writing is canonical: fields are quoted only when they hold
``,``, ``"``, CR or LF, the
properties are the ``repr`` of the dict, visibility is ``True``/``False`` and lines end
with ``\\n``. A canonical file loaded and written again is byte-identical, and anything
written loads back to the same nine fields.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import glob
import io
import os
import re
import tempfile
from collections.abc import Iterable
from typing import Any

from glancesync.errors import ConfigError
from glancesync.filenames import file_part
from glancesync.gcpause import cyclic_gc_paused
from glancesync.image import Image

PREFIX = "backup_"
SUFFIX = ".csv"
FIELDS = (
    "region",
    "name",
    "id",
    "status",
    "size",
    "checksum",
    "owner",
    "is_public",
    "user_properties",
)
# Fields the nine columns have no place for, kept in the properties column as reserved
# properties: Glance's ``shared`` visibility and the members of a shared image.
VISIBILITY_KEY = "glancesync_visibility"
MEMBERS_KEY = "glancesync_members"
_SIZE = re.compile(r"[0-9]+")
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')
# A cell a spreadsheet would run as a formula, after any number of escaping quotes.
_FORMULA = re.compile(r"'*[=+\-@]")


class _LineError(Exception):
    """A problem in one record; turned into a ConfigError once the file and line are known."""


def backup_file_name(region: str) -> str:
    return f"{PREFIX}{file_part(region)}{SUFFIX}"


def region_of_file(path: str) -> str:
    """The region a backup file describes; the file name is the only place it is stated."""
    base = os.path.basename(path)
    if not (base.startswith(PREFIX) and base.endswith(SUFFIX)):
        raise ConfigError(f"a backup file must be named {PREFIX}<region>{SUFFIX}", source=path)
    region = base[len(PREFIX) : -len(SUFFIX)]
    if not region:
        raise ConfigError("the file name gives no region", source=path)
    return region


def record(image: Image) -> tuple[Any, ...]:
    """The nine backed-up fields, in file order: compare images the way a backup sees them
    (uploads also carry formats and hashes that no backup keeps)."""
    values = {name: getattr(image, name) for name in FIELDS}
    values["user_properties"] = backup_properties(image)
    return tuple(values.values())


def backup_properties(image: Image) -> dict[str, Any]:
    """The properties column: the user properties plus ``glancesync_visibility: 'shared'``
    and ``glancesync_members`` (project id -> member status) when the image has them."""
    props = dict(image.user_properties)
    if image.shared:
        props[VISIBILITY_KEY] = "shared"
    if image.members:
        props[MEMBERS_KEY] = dict(sorted(image.members.items()))
    return props


# ---------------------------------------------------------------- writing


def _quote(field: str) -> str:
    # Our own quoting: csv.writer leaves a lone CR unquoted when lines end with LF,
    # which a reader would then take for a line break.
    if _NEEDS_QUOTES.search(field):
        return '"' + field.replace('"', '""') + '"'
    return field


def _neutralise(field: str) -> str:
    """A cell starting with ``=``, ``+``, ``-`` or ``@`` (after any ``'``) gets one more
    leading ``'``, so a spreadsheet shows it as text; ``_restore`` takes it off again."""
    return "'" + field if _FORMULA.match(field) else field


def _restore(field: str) -> str:
    return field[1:] if field.startswith("'") and _FORMULA.match(field[1:]) else field


def format_line(image: Image, region: str | None = None) -> str:
    """The record of ``image`` including its final ``\\n``; ``region`` overrides image.region."""
    fields = [
        image.region if region is None else region,
        image.name,
        image.id,
        image.status,
        str(int(image.size)),
        image.checksum or "",
        image.owner or "",
        "True" if image.is_public else "False",
        repr(backup_properties(image)),
    ]
    return ",".join(_quote(_neutralise(f)) for f in fields) + "\n"


def dump_backup(region: str, images: Iterable[Image]) -> str:
    return "".join(format_line(image, region) for image in images)


def write_backup(path: str, region: str, images: Iterable[Image]) -> None:
    """Write a region's file atomically, so a crash or a concurrent reader never sees half a file.

    Every line gets ``region`` as its first field, whatever the images say, so the file is
    always loadable under its own name.
    """
    text = dump_backup(region, images)
    folder = os.path.dirname(os.path.abspath(path))
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


def _mode_for(path: str) -> int:
    # mkstemp creates 0600 files; keep the mode of the file we replace, else a normal 0644.
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        return 0o644


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# ---------------------------------------------------------------- reading


def parse_fields(fields: list[str], region: str) -> Image:
    """One record as an Image; raises _LineError with the operator-facing problem."""
    if len(fields) != len(FIELDS):
        raise _LineError(f"expected {len(FIELDS)} fields, found {len(fields)}")
    rec = dict(zip(FIELDS, map(_restore, fields), strict=True))
    if rec["region"] != region:
        raise _LineError(f"region is {rec['region']!r} but the file is for region {region!r}")
    properties = _parse_properties(rec["user_properties"])
    shared, members = _sharing(properties)
    return Image(
        name=rec["name"],
        id=rec["id"],
        region=region,
        status=rec["status"],
        size=_parse_size(rec["size"]),
        checksum=rec["checksum"],
        owner=rec["owner"],
        is_public=_parse_bool(rec["is_public"]),
        user_properties=properties,
        shared=shared,
        members=members,
    )


def _sharing(properties: dict[str, Any]) -> tuple[bool, dict[str, str] | None]:
    """Takes the visibility and members columns' reserved keys out of ``properties``."""
    visibility = properties.pop(VISIBILITY_KEY, None)
    if visibility not in (None, "shared"):
        raise _LineError(f"{VISIBILITY_KEY} must be 'shared', not {visibility!r}")
    members = properties.pop(MEMBERS_KEY, None)
    if members is None:
        return visibility == "shared", None
    if not isinstance(members, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in members.items()
    ):
        raise _LineError(f"{MEMBERS_KEY} must map project ids to member statuses")
    return visibility == "shared", dict(members)


def _parse_size(text: str) -> int:
    if not _SIZE.fullmatch(text):
        raise _LineError(f"size must be a whole number of bytes, not {text!r}")
    try:
        return int(text)
    except ValueError:  # more digits than Python converts
        raise _LineError(f"size is too large: {text[:20]!r}...") from None


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise _LineError(f"is_public must be True or False, not {text!r}")
    return lowered == "true"


def _parse_properties(text: str) -> dict[str, Any]:
    """Safe literal evaluation only: these files come from anywhere and must never run code."""
    if not text.strip():
        return {}
    value = _literal(text)
    if not isinstance(value, dict):
        raise _LineError(f"user_properties must be a dict literal, not {_short(text)}")
    if not all(isinstance(key, str) for key in value):
        raise _LineError(f"user_properties keys must be strings: {_short(text)}")
    # Reject what could not be written back (inf, nan...): a backup must always reload.
    # Plain strings and integers always can, so only other values pay for the check.
    if all(type(v) in _SAFE_TYPES for v in value.values()):
        return value
    try:
        if ast.literal_eval(repr(value)) != value:
            raise ValueError
    except Exception:
        raise _LineError(f"user_properties cannot be written back: {_short(text)}") from None
    return value


_SAFE_TYPES = (str, int, bool)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except Exception:  # SyntaxError, ValueError, RecursionError, MemoryError... on bad input
        raise _LineError(f"user_properties is not a Python literal: {_short(text)}") from None


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_line(line: str, region: str, lineno: int = 1, source: str = "") -> Image:
    """Parse one record given as text (it may span lines when a quoted field holds a newline)."""
    try:
        rows = list(csv.reader(_lines(line)))
    except csv.Error as exc:
        raise ConfigError(f"line {lineno}: {exc}", source=source) from None
    rows = [row for row in rows if not _is_blank(row)]
    if len(rows) != 1:
        raise ConfigError(f"line {lineno}: expected one record, found {len(rows)}", source=source)
    try:
        return parse_fields(rows[0], region)
    except _LineError as exc:
        raise ConfigError(f"line {lineno}: {exc}", source=source) from None


def _lines(text: str) -> io.StringIO:
    # Only CR, LF and CRLF end lines (str.splitlines would also split at \f, \x1c, U+2028...).
    return io.StringIO(text, newline="")


def _is_blank(row: list[str]) -> bool:
    return not row or (len(row) == 1 and not row[0].strip())


def load_text(text: str, region: str, source: str = "") -> list[Image]:
    """Every image of a backup given as text; ``source`` names it in errors."""
    images: list[Image] = []
    reader = csv.reader(_lines(text))
    start = 1
    try:
        for row in reader:
            if not _is_blank(row):
                images.append(parse_fields(row, region))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ConfigError(f"line {start}: {exc}", source=source) from None
    except _LineError as exc:
        raise ConfigError(f"line {start}: {exc}", source=source) from None
    return images


def read_backup(path: str) -> tuple[str, list[Image]]:
    """The region (from the file name) and its images in file order."""
    region = region_of_file(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", source=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"line {line}: not valid UTF-8 text", source=path) from None
    return region, load_text(text, region, source=path)


def backup_files(folder: str) -> list[str]:
    """The backup files of a folder, sorted by name so loading order is reproducible."""
    pattern = os.path.join(glob.escape(folder), f"{PREFIX}*{SUFFIX}")
    return sorted(path for path in glob.glob(pattern) if os.path.isfile(path))


def read_folder(folder: str) -> dict[str, list[Image]]:
    """Every region of a folder of backups, keyed by full name, in file-name order."""
    regions: dict[str, list[Image]] = {}
    with cyclic_gc_paused():
        for path in backup_files(folder):
            region, images = read_backup(path)
            regions[region] = images
    return regions
