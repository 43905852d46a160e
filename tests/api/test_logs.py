"""The packaged logging file (issue 24 item 4): INFO to stderr, each line with time,
level, logger, and the task id and region of the sync it belongs to."""

from __future__ import annotations

import io
import logging
import re

from app.logs import DEFAULT_LOGGING_FILE, ContextFormatter, configure_logging, log_context

TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def formatted(record_args: dict | None = None) -> str:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(
        ContextFormatter("%(levelname)s [task %(task_id)s region %(region)s] %(message)s")
    )
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    for key, value in (record_args or {}).items():
        setattr(record, key, value)
    return handler.format(record)


def test_lines_name_the_task_and_region_of_their_context():
    assert formatted() == "INFO [task - region -] hello"
    with log_context("t-1", "Burgos"):
        assert formatted() == "INFO [task t-1 region Burgos] hello"
        assert formatted({"region": "Caceres"}) == "INFO [task t-1 region Caceres] hello"
    assert formatted() == "INFO [task - region -] hello"


def test_no_file_means_info_to_stderr(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("")
        log = logging.getLogger("GlanceSync-API")
        log.debug("not shown")
        with log_context("t-2", "other:Madrid"):
            log.info("shown")
        err = capsys.readouterr().err
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert "not shown" not in err
    pattern = TIME + r" INFO GlanceSync-API \[- task t-2 region other:Madrid\] shown"
    assert re.fullmatch(pattern, err.strip()), err
    assert DEFAULT_LOGGING_FILE.endswith("app/fiware-glancesync-logging.cfg")
