"""``glancesync-mock``: prepare a persistent mock folder from a backup (reference 8.5).

Typical use: ``eval $(glancesync-mock --path persistent_data scenario1)``, then run
``glancesync`` against the copy. The source folder is validated completely before the
persistent folder is touched, so a bad backup never destroys the previous state.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile

from glancesync.backends import csvfile
from glancesync.errors import ConfigError, GlanceSyncError

DEFAULT_PATH = "~/.glancesync_persist/"
TMP_PREFIX = "glancesync_tmp"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glancesync-mock",
        description="Copy a folder of backup_<region>.csv files into the persistent mock "
        "folder and print the export line that activates it.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--path", default=DEFAULT_PATH, help=f"persistent folder (default {DEFAULT_PATH})"
    )
    where.add_argument(
        "--random", action="store_true", help=f"use a new temporary folder ({TMP_PREFIX}*)"
    )
    parser.add_argument(
        "--confirm", action="store_true", help="replace the backup files already in the folder"
    )
    parser.add_argument("initial_load", help="folder of backup_<region>.csv files to load")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage errors (2) and --help (0)
        return int(exc.code or 0)
    try:
        folder = prepare(args.initial_load, args.path, args.random, args.confirm)
    except _NotEmpty as exc:
        print(exc, file=sys.stderr)
        return 2
    except GlanceSyncError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    print(f"export GLANCESYNC_MOCKPERSISTENT_PATH={shlex.quote(folder)}")
    return 0


def prepare(initial_load: str, path: str, random: bool, confirm: bool) -> str:
    """Validate, make room and copy; return the absolute persistent folder."""
    if not os.path.isdir(initial_load):
        shown = os.path.normpath(os.path.expanduser(initial_load))
        raise ConfigError(f'The directory "{shown}" with the initial load must exist')
    sources = csvfile.backup_files(initial_load)
    for source in sources:
        csvfile.read_backup(source)  # raises ConfigError naming the file and line
    folder = _make_folder(path, random)
    if _same_folder(initial_load, folder):
        return folder
    _clear_previous(folder, path, confirm)
    for source in sources:
        _copy(source, folder)
    return folder


def _make_folder(path: str, random: bool) -> str:
    try:
        if random:
            return os.path.abspath(tempfile.mkdtemp(prefix=TMP_PREFIX))
        folder = os.path.abspath(os.path.expanduser(path))
        os.makedirs(folder, exist_ok=True)
        return folder
    except OSError as exc:
        raise ConfigError(f"cannot create the folder: {exc.strerror or exc}", source=path) from None


def _same_folder(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _clear_previous(folder: str, path: str, confirm: bool) -> None:
    previous = csvfile.backup_files(folder)
    if previous and not confirm:
        raise _NotEmpty(os.path.normpath(os.path.expanduser(path)))
    for path in previous:
        try:
            os.unlink(path)
        except OSError as exc:
            raise ConfigError(f"cannot remove: {exc.strerror or exc}", source=path) from None


def _copy(source: str, folder: str) -> None:
    target = os.path.join(folder, os.path.basename(source))
    try:
        shutil.copyfile(source, target)
    except OSError as exc:
        raise ConfigError(
            f"cannot copy to {folder}: {exc.strerror or exc}", source=source
        ) from None


class _NotEmpty(GlanceSyncError):
    """The exact message of reference 8.5, printed without the ``ERROR:`` decoration."""

    def __init__(self, folder: str) -> None:
        super().__init__(f'The directory "{folder}" is not empty. If you are sure, pass --confirm')


if __name__ == "__main__":
    raise SystemExit(main())
