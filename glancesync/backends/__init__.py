"""Choosing the backend of every target: the mock (reference 8.1) or the real Glance.

The real backend is imported only when needed, so the mock works on machines without the
OpenStack client libraries.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from glancesync.backends.base import Backend
from glancesync.backends.mock import MockBackend, MockStore

if TYPE_CHECKING:
    from glancesync.config import Config

USE_MOCK = "GLANCESYNC_USE_MOCK"
PERSISTENT_PATH = "GLANCESYNC_MOCKPERSISTENT_PATH"


def mock_store_from_env(environ: Mapping[str, str] = os.environ) -> MockStore | None:
    """The mock store the environment asks for, or None for the real clouds.

    Loading errors in the backup files raise ConfigError (exit 2).
    """
    use_mock = environ.get(USE_MOCK, "")
    if use_mock:
        return MockStore.load(use_mock) if os.path.isdir(use_mock) else MockStore()
    persistent = environ.get(PERSISTENT_PATH, "")
    if persistent:
        return MockStore.persistent(persistent)
    return None


def make_backends(
    config: Config, environ: Mapping[str, str] = os.environ, store: MockStore | None = None
) -> dict[str, Backend]:
    """One backend per target, keyed by target name.

    ``store`` lets a long-lived caller (the REST service, tests) keep one mock store
    across runs; without it the store comes from the environment.
    """
    if store is None:
        store = mock_store_from_env(environ)
    if store is not None:
        return {name: MockBackend(target, store) for name, target in config.targets.items()}
    from glancesync.backends.glance import GlanceBackend

    return {name: GlanceBackend(target, config) for name, target in config.targets.items()}
