"""The operator's texts and kinds of failed member calls (glance_member_errors)."""

from __future__ import annotations

import pytest

from glancesync.backends.glance_member_errors import (
    ADD,
    LIST,
    PROJECTS,
    REMOVE,
    STATUS,
    already_done,
    answer_status,
    member_kind,
    member_reason,
)
from glancesync.errors import ErrorKind


class Answer(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"HTTP {code}")
        self.code = code


@pytest.mark.parametrize(
    ("call", "status", "done"),
    [(ADD, 409, True), (REMOVE, 404, True), (ADD, 404, False), (STATUS, 409, False)],
)
def test_a_member_already_as_wanted_is_no_failure(call, status, done):
    assert already_done(call, status) is done


@pytest.mark.parametrize(
    ("call", "status", "words"),
    [
        (ADD, 403, "only the project that owns a shared image may share it"),
        (ADD, 413, "image_member_quota"),
        (STATUS, 403, "only admin credentials"),
        (LIST, 403, "only shared images have members"),
        (LIST, 404, "the image is gone"),
        (PROJECTS, 403, "needs admin credentials in both targets"),
    ],
)
def test_refusals_say_what_to_fix(call, status, words):
    assert words in member_reason(call, status)


def test_other_answers_keep_the_library_text():
    assert member_reason(ADD, 500) is None
    assert member_reason(PROJECTS, 404) is None
    assert member_reason(ADD, None) is None


def test_kinds_come_from_the_status():
    assert member_kind(403) == ErrorKind.REFUSED
    assert member_kind(413) == ErrorKind.QUOTA
    assert member_kind(401) == ErrorKind.AUTH
    assert member_kind(503) == ErrorKind.UNAVAILABLE
    assert member_kind(None) is None


def test_the_status_is_found_in_a_wrapped_failure():
    try:
        try:
            raise Answer(403)
        except Answer as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as exc:
        assert answer_status(exc) == 403
    assert answer_status(ValueError("no answer")) is None
