"""Session fixture for the local OpenStack testbed (real Keystone + Glance on loopback).

One testbed per test session, in a tmp dir, stopped at the end.  To iterate faster,
start one by hand (``python -m testbed start --workdir DIR``) and set
``GLANCESYNC_TESTBED_WORKDIR=DIR``: the session then reuses it and leaves it running.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed import Testbed, TestbedError
from testbed.clients import session_for

# The region whose Glance has two file stores, fast (its default) and slow (issue 25: the
# multi-store tests); every other region keeps the one store ``file``.
MULTI_STORE_REGIONS = ("Lannion",)


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    reuse = os.environ.get("GLANCESYNC_TESTBED_WORKDIR")
    if reuse:
        tb = Testbed(Path(reuse))
        if tb.running():
            yield tb
            return
    tb = Testbed(tmp_path_factory.mktemp("testbed"))
    try:
        tb.start(multi_store=MULTI_STORE_REGIONS)
    except TestbedError as exc:
        tb.stop()
        pytest.fail(f"the testbed did not start: {exc}", pytrace=False)
    try:
        yield tb
    finally:
        tb.stop()


@pytest.fixture(scope="session")
def os_session(testbed: Testbed) -> Callable[..., object]:
    """Factory: a keystoneauth1 Session for ``user`` ("admin"/"demo") on a keystone."""

    def make(keystone: str = "keystone-1", user: str = "admin"):
        return session_for(testbed.info, keystone, user)

    return make


@pytest.fixture
def admin_token(os_session) -> Callable[[], str]:
    """Factory: a new Keystone token of the testbed admin at each call."""
    return lambda: os_session("keystone-1").get_token()


from fixtures_glance import *  # noqa: E402,F401,F403 - Glance backend fixtures (issue 4)
