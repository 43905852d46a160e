"""The hypothesis state machine of the task lifecycle (issue 21, deliverable 2).

Its rules are the actors of tests/support/task_world.py; its invariants those of
tests/support/task_invariants.py, checked after every step. Arguments that pick a
process, a job or a message are plain integers taken modulo what exists, so a shrunk
counterexample printed by hypothesis replays as it is in a plain pytest function
(``replay`` below; tests/api/test_task_model.py holds those regression tests).

Hypothesis profiles: ``ci`` (the default, bounded, reproducible) and ``long``, chosen by
``GLANCESYNC_HYPOTHESIS_PROFILE`` (docs/reliability.md).
"""

from __future__ import annotations

import os

import pytest
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.support.model_clock import install
from tests.support.task_invariants import INVARIANTS, Observer
from tests.support.task_world import ERROR, FAIL, OK, REGIONS, World

PROFILE_VARIABLE = "GLANCESYNC_HYPOTHESIS_PROFILE"
_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}
# ci: the same examples every run, no shrinking (a failure prints its whole, unshrunk
# run; the shrunk ones are the regression tests of tests/api/test_task_model.py)
settings.register_profile(
    "ci",
    max_examples=60,
    stateful_step_count=30,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    database=None,
    **_COMMON,
)
# long: random, shrunk, and a failure found is replayed first by the next run (.hypothesis/)
settings.register_profile("long", max_examples=2000, stateful_step_count=60, **_COMMON)


def profile() -> settings:
    return settings.get_profile(os.environ.get(PROFILE_VARIABLE, "ci"))


PROCESS = st.integers(0, 3)
INTERRUPT = st.none() | st.tuples(st.integers(1, 3), st.sampled_from(["crash", 0, 1]))


class TaskLifecycle(RuleBasedStateMachine):
    """Two serving processes (own worker identities) on one database, driven step by step."""

    apps: list[Flask] = []  # set by the test: one app per process, on its database
    checked: frozenset[str] = frozenset(INVARIANTS)

    def __init__(self) -> None:
        super().__init__()
        self.patches = pytest.MonkeyPatch()
        self.world = World(list(self.apps), self.patches)
        self.observer = Observer(self.world, self.checked)
        self.started = False

    def teardown(self) -> None:
        for process in self.world.processes:
            process.runner.shutdown(wait=False)
        self.patches.undo()

    # -- picking ------------------------------------------------------------------------------
    def _live(self, process: int) -> int:
        live = self.world.live()
        return live[process % len(live)].index

    # -- rules ----------------------------------------------------------------------------------
    @initialize(broker=st.booleans())
    def start(self, broker: bool) -> None:
        self.world.broker = broker
        install(self.world.clock, self.patches)
        self.world.start()
        self.started = True

    @rule(
        process=PROCESS,
        region=st.sampled_from(REGIONS),
        follow_up=st.booleans(),
        interrupt=INTERRUPT,
    )
    def post(self, process: int, region: str, follow_up: bool, interrupt) -> None:
        self.world.armed(interrupt)
        self.world.post(self._live(process), region, follow_up)

    @rule(
        process=PROCESS,
        regions=st.lists(st.sampled_from(REGIONS), min_size=2, max_size=3, unique=True),
        interrupt=INTERRUPT,
    )
    def post_group(self, process: int, regions: list[str], interrupt) -> None:
        self.world.armed(interrupt)
        self.world.post_group(self._live(process), regions)

    @rule(process=PROCESS, region=st.sampled_from(REGIONS))
    def cancel(self, process: int, region: str) -> None:
        self.world.cancel(self._live(process), region)

    @precondition(lambda self: self.world.messages)
    @rule(message=st.integers(0, 7), process=PROCESS, interrupt=INTERRUPT)
    def deliver(self, message: int, process: int, interrupt) -> None:
        self.world.armed(interrupt)
        self.world.deliver(message % len(self.world.messages), self._live(process))

    @precondition(lambda self: self.world.messages)
    @rule(message=st.integers(0, 7))
    def duplicate(self, message: int) -> None:
        """A redelivery (a worker lost before its ack) or a message published twice."""
        self.world.messages.append(self.world.messages[message % len(self.world.messages)])

    @precondition(lambda self: self.world.messages)
    @rule(message=st.integers(0, 7))
    def lose(self, message: int) -> None:
        """A crash between commit and publish, a purged queue, a failed republish."""
        self.world.messages.pop(message % len(self.world.messages))

    @precondition(lambda self: self.world.runnable_jobs())
    @rule(job=st.integers(0, 7), outcome=st.sampled_from([OK, OK, FAIL, ERROR]))
    def finish(self, job: int, outcome: str) -> None:
        """The sync of a process that is not frozen ends (a frozen one makes no progress)."""
        runnable = self.world.runnable_jobs()
        self.world.finish(runnable[job % len(runnable)], outcome)

    @rule(
        seconds=st.sampled_from([0.25, 0.5, 1.0, 3.0]),
        order=st.permutations([0, 1]),
        slow=st.booleans(),
    )
    def tick(self, seconds: float, order: list[int], slow: bool) -> None:
        self.world.tick(seconds, list(order), slow)

    @rule(process=PROCESS)
    def lease_round(self, process: int) -> None:
        """A lease round earlier than due (the phase between processes varies)."""
        self.world.lease_round(self._live(process))

    @precondition(lambda self: len(self.world.live()) > 1)
    @rule(process=PROCESS)
    def freeze(self, process: int) -> None:
        """SIGSTOP, a paused VM: no lease round, no sync step, no request until thawed."""
        self.world.processes[self._live(process)].frozen = True

    @precondition(lambda self: len(self.world.live()) < len(self.world.processes))
    @rule()
    def thaw(self) -> None:
        frozen = next(p for p in self.world.processes if p.frozen)
        frozen.frozen = False
        frozen.due = min(frozen.due, self.world.clock.now)

    @rule(process=PROCESS)
    def restart(self, process: int) -> None:
        self.world.restart(process % len(self.world.processes))

    # -- invariants -------------------------------------------------------------------------------
    @invariant()
    def lifecycle_holds(self) -> None:
        if self.started:
            self.observer.check()


def replay(apps: list[Flask], broker: bool, checked=INVARIANTS) -> TaskLifecycle:
    """A machine started by hand, for a regression test that replays shrunk steps; call
    ``state.check()`` after each step, ``state.teardown()`` at the end."""
    TaskLifecycle.apps = apps
    TaskLifecycle.checked = frozenset(checked)
    state = TaskLifecycle()
    state.start(broker=broker)
    state.check = state.lifecycle_holds
    return state
