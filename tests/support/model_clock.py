"""A clock the task-lifecycle model moves by hand: the database's and the runners'.

The lease SQL compares times that Python passes in (``db_now`` is read, then written or
compared in the statement), so a model that owns ``db_now`` owns the database's clock
without changing one statement. The runners time their own lease with ``time.monotonic``
(``LiveTask.renewed``/``expired``); the model owns that clock too, so "DEAD_AFTER passed"
is a step the model takes, not a sleep that hopes the machine is fast enough.

One clock serves both: a model process that is not frozen sees time pass as the
database does; a frozen one simply takes no step until it is thawed.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import types
from datetime import datetime, timedelta

import pytest

import app.models
from app.tasks.live import LiveTask

EPOCH = datetime(2030, 1, 1, 12, 0, 0)


class ModelClock:
    """Seconds since the model started; ``advance`` is the only way time passes."""

    def __init__(self) -> None:
        self.now = 0.0

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, moment: float) -> None:
        self.now = max(self.now, moment)

    def db_now(self, session=None) -> datetime:
        return EPOCH + timedelta(seconds=self.now)

    def monotonic(self) -> float:
        return 1000.0 + self.now


def install(clock: ModelClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``db_now`` imported from app.models and every ``time`` module of app.tasks
    read the model's clock; a fresh ``LiveTask`` gets the model's time in every field
    whose dataclass default is ``time.monotonic`` (captured when the class was made).

    Modules are found by what they hold, not by a list of names, so the patch follows
    the code when a function moves to another module."""
    original = app.models.db_now
    fake_time = types.SimpleNamespace(
        **{name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    )
    fake_time.monotonic = clock.monotonic
    for name, module in list(sys.modules.items()):
        if not name.startswith("app.") or module is None:
            continue
        if getattr(module, "db_now", None) is original:
            monkeypatch.setattr(module, "db_now", clock.db_now)
        if name.startswith("app.tasks") and getattr(module, "time", None) is time:
            monkeypatch.setattr(module, "time", fake_time)
        if name.startswith("app.tasks") and getattr(module, "monotonic", None) is time.monotonic:
            monkeypatch.setattr(module, "monotonic", clock.monotonic)
    init = LiveTask.__init__
    stamped = [f.name for f in dataclasses.fields(LiveTask) if f.default_factory is time.monotonic]

    def live_init(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        for name in stamped:
            if name not in kwargs:
                setattr(self, name, clock.monotonic())

    monkeypatch.setattr(LiveTask, "__init__", live_init)
