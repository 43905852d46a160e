"""Every log text of reference is printed exactly as written (issue 11, item 8).

``REFERENCE_TEXTS`` is every backticked ``INFO:``, ``WARNING:`` or ``ERROR:`` text of
reference (``grep -oE '`(INFO|WARNING|ERROR):[^`]*`'``; the specification lives outside
this repository, so the list is copied here: add a text when the specification gains one).
The generic ones (with ``<placeholders>``) must match, whole, a line that the tool really
printed while replaying every scenario (sync, then again as a dry-run) and a few command
lines; the worked-example ones must be instances of a generic one.

Texts of features tested with real processes elsewhere (interrupts, locks, uploads of
another run, protected images) are not replayed here: they must be asserted by some
test, which is checked by looking for their fixed words in the test sources.
"""

from __future__ import annotations

import logging.handlers
import re
import shutil
import sys
from functools import cache
from pathlib import Path

import pytest

from glancesync.cli import main
from tests.support.logs import lines_of
from tests.support.scenarios import SCENARIOS, load_scenario

ROOT = Path(__file__).resolve().parent.parent
_PLACEHOLDER = re.compile(r"<([^<>]+)>")
# Asserted by the tests of their features (real processes, testbed), not replayed here.
ELSEWHERE = (
    "interrupted by",
    "another glancesync run is syncing this region",
    "is being uploaded by another run; skipped",
    "is protected and cannot be replaced; nothing uploaded",
)
REFERENCE_TEXTS = [
    "ERROR: ",
    "ERROR: /etc/glancesync.conf: [master] metadata_condition: function call 'len' is not allowed",
    "ERROR:<F>: another glancesync run is syncing this region",
    "ERROR:<F>: interrupted by <SIGINT|SIGTERM>; half-uploaded images deleted",
    "ERROR:<F>:Error retrieving images from region. Cause <reason>",
    "ERROR:<message>",
    "INFO:<F>:   Total uploaded to region: <N> (MB) ",
    "INFO:<F>: Image pending to update the metadata <name>",
    "INFO:<F>: Image uploaded.",
    "INFO:<F>: MBs pending : <N>",
    "INFO:<F>: Obsolete image pending to update <name>",
    "INFO:<F>: Pending: <name> (<MB> MB)",
    "INFO:<F>: Region is synchronized.",
    "INFO:<F>: Renaming and replacing image <name> (<MB> MB)",
    "INFO:<F>: Replacing image <name> (<MB> MB)",
    "INFO:<F>: Updating the metadata of image <name>",
    "INFO:<F>: Uploading image <name> (<MB> MB)",
    "INFO:<F>: updating obsolete image <name>",
    "INFO:Backup of region <F>",
    "INFO:Burgos: Image pending to update the metadata img02",
    "INFO:Burgos: Image uploaded.",
    "INFO:Burgos: MBs pending : 50",
    "INFO:Burgos: Obsolete image pending to update ubuntu_obsolete",
    "INFO:Burgos: Pending: img05 (50.00 MB)",
    "INFO:Burgos: Region is synchronized.",
    "INFO:Burgos: Renaming and replacing image img07 (70.00 MB)",
    "INFO:Burgos: Replacing image img07 (70.00 MB)",
    "INFO:Burgos: Updating the metadata of image ami1",
    "INFO:Burgos: Uploading image img05 (50.00 MB)",
    "INFO:Burgos: updating obsolete image ubuntu_obsolete",
    "INFO:other:Madrid: Region is synchronized.",
    "WARNING:<F>: <name> is being uploaded by another run; skipped",
    "WARNING:<F>: Not found <A> on region. It should be <kernel_id|ramdisk_id> of image <name>",
    "WARNING:<F>: image <name> (UUID <id>) is owned by other tenant: <owner>",
    "WARNING:<F>: image <name> is protected and cannot be replaced; nothing uploaded",
    "WARNING:<F>: image name <name> is duplicated. UUIDs: <id of this image> <id of the image already kept>",  # noqa: E501
    "WARNING:<F>: state of image <name> with UUID <id>  is not active: <status>",
    "WARNING:Burgos: Not found kern1 on region. It should be kernel_id of image ami1",
    "WARNING:Burgos: Not found ramd1 on region. It should be ramdisk_id of image ami1",
    "WARNING:Burgos: image img02 (UUID 203) is owned by other tenant: tenantXid",
    "WARNING:Burgos: image name img01 is duplicated. UUIDs: 202 201",
    "WARNING:Burgos: state of image img02 with UUID 204  is not active: queued",
    "WARNING:Duplicated images with name <name> will be ignored",
    "WARNING:Duplicated images with name X will be ignored",
    "WARNING:Ignore obsolete master image <base>_obsolete because <base> exists and it is synchronisable.",  # noqa: E501
    "WARNING:Ignore obsolete master image ubuntu_obsolete because ubuntu exists and it is synchronisable.",  # noqa: E501
    "WARNING:Image <name> has a different checksum (<region checksum>) in region <F> than in the master region. It was not set what to do. Please, fill either dontupdate, replace or rename with the checksum.",  # noqa: E501
    "WARNING:Image <name> refers to <kernel_id|ramdisk_id> <value>, which is not among the master images",  # noqa: E501
    "WARNING:Image ami1 refers to kernel_id 077, which is not among the master images",
    "WARNING:Image img07 has a different checksum (x) in region Burgos than in the master region. It was not set what to do. Please, fill either dontupdate, replace or rename with the checksum.",  # noqa: E501
    "WARNING:metadata_condition of target <target> failed for image <name>: <reason>",
]


def pattern(text: str) -> re.Pattern[str]:
    """The text as a regex: ``<a|b>`` is one of the words, any other ``<x>`` is any text."""
    if text == "ERROR: ":  # "one line starting with `ERROR: `" (2.1)
        return re.compile(r"ERROR: .+")
    parts, last = [], 0
    for m in _PLACEHOLDER.finditer(text):
        parts.append(re.escape(text[last : m.start()]))
        choices = m.group(1).split("|")
        parts.append("(?:" + "|".join(map(re.escape, choices)) + ")" if len(choices) > 1 else ".+?")
        last = m.end()
    parts.append(re.escape(text[last:]))
    return re.compile("".join(parts))


GENERIC = [t for t in REFERENCE_TEXTS if "<" in t or t == "ERROR: "]
EXAMPLES = [t for t in REFERENCE_TEXTS if t not in GENERIC]


def replayed_lines() -> set[str]:
    """Every line logged while syncing (real run and dry-run) every region of every
    scenario."""
    lines: set[str] = set()
    for name in SCENARIOS:
        for dry_run in (False, True):
            gs, _, regions = load_scenario(name)
            # caplog is per test: this module-wide fixture keeps the records in a buffer
            logged = logging.handlers.BufferingHandler(capacity=sys.maxsize)
            gs.log.addHandler(logged)
            try:
                for region in regions:
                    gs.sync_region(region, dry_run=dry_run)
            finally:
                gs.log.removeHandler(logged)
            lines.update(lines_of(logged.buffer))
    return lines


def command_lines(tmp: Path) -> set[str]:
    """Lines of the modes the scenarios do not reach: backups, configuration errors."""
    store, config = tmp / "store", tmp / "glancesync.conf"
    shutil.copytree(ROOT / "tests" / "scenarios" / "basic", store)
    config.write_text((ROOT / "tests" / "cli" / "basic.conf").read_text())
    config.chmod(0o600)
    runs = [
        ["--make-backup", "Burgos", "other:Nowhere"],
        ["--show-status", "nosuch:Burgos"],
    ]
    return {line for args in runs for line in _run(tmp, args)}


def _run(tmp: Path, args: list[str]) -> list[str]:
    import contextlib
    import io
    import os

    out, err = io.StringIO(), io.StringIO()
    env = {
        "GLANCESYNC_CONFIG": str(tmp / "glancesync.conf"),
        "GLANCESYNC_MOCKPERSISTENT_PATH": str(tmp / "store"),
    }
    saved = {key: os.environ.get(key) for key in [*env, "GLANCESYNC_USE_MOCK"]}
    os.environ.update(env)
    os.environ.pop("GLANCESYNC_USE_MOCK", None)
    try:
        with (
            contextlib.chdir(tmp),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            main(args)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return (out.getvalue() + err.getvalue()).splitlines()


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> set[str]:
    return replayed_lines() | command_lines(tmp_path_factory.mktemp("log-texts"))


def test_behaviour_lists_the_texts():
    assert len(GENERIC) >= 25 and len(EXAMPLES) >= 15


@pytest.mark.parametrize("text", [t for t in GENERIC if not any(w in t for w in ELSEWHERE)])
def test_generic_text_is_printed(text, printed):
    regex = pattern(text)
    assert any(regex.fullmatch(line) for line in printed), text


@pytest.mark.parametrize("text", EXAMPLES)
def test_worked_example_text_is_an_instance_of_a_generic_one(text):
    assert any(pattern(generic).fullmatch(text) for generic in GENERIC), text


@cache
def source_of_tests() -> str:
    here = Path(__file__).resolve()
    return "\n".join(
        path.read_text() for path in (ROOT / "tests").rglob("*.py") if path.resolve() != here
    )


@pytest.mark.parametrize("text", [t for t in GENERIC if any(w in t for w in ELSEWHERE)])
def test_text_of_a_feature_tested_elsewhere_is_asserted_by_a_test(text):
    fixed = [part.strip() for part in _PLACEHOLDER.split(text)[::2] if len(part.strip()) > 3]
    sources = source_of_tests()
    assert fixed and all(part in sources for part in fixed), (text, fixed)
