"""keystoneauth1 sessions for the testbed's users, for tests, the demo and benchmarks.

Kept apart from the rest of the package: it needs keystoneauth1 from the caller's
environment, while the servers themselves run from the testbed's own virtualenv.
"""

from __future__ import annotations

from typing import Any


def session_for(info: dict[str, Any], keystone: str = "keystone-1", user: str = "admin"):
    """A project-scoped session of ``user`` (``admin`` or ``demo``) on ``keystone``."""
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    ks = info["keystones"][keystone]
    return session.Session(auth=v3.Password(auth_url=ks["url"], **ks[user]))
