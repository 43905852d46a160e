"""The tests' one wait helper: it returns what it waited for, or fails saying what."""

from __future__ import annotations

import pytest

from tests.support.waiting import wait_until


def test_returns_the_first_true_value():
    values = iter([0, None, "ready"])
    assert wait_until(lambda: next(values), 1, step=0.001) == "ready"


def test_a_timeout_names_what_was_awaited_and_the_last_error():
    def missing() -> bool:
        raise KeyError("row")

    with pytest.raises(AssertionError, match=r"for the row.*KeyError\('row'\)") as info:
        wait_until(missing, 0.01, step=0.001, what="the row")
    assert isinstance(info.value.__cause__, KeyError)


def test_without_a_description_the_lambda_source_says_it():
    with pytest.raises(AssertionError, match=r"lambda: 1 > 2"):
        wait_until(lambda: 1 > 2, 0.01, step=0.001)


def test_an_error_not_ignored_fails_at_once():
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, 10, ignore=())
