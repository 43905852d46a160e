"""``data_timeout``: how long the real backend waits on an image data request (issue 11,
item 7). Tests of hung servers need it short; operators on slow links need it long. It
was a constructor argument only, out of reach of the CLI and the service."""

from __future__ import annotations

import pytest

from glancesync.backends import make_backends
from glancesync.config import load_config
from glancesync.errors import ConfigError

TEXT = """
[main]
master_region = Valladolid

[master]
credential = user,ZmFrZXBhc3N3b3JkLG9mY291cnNl,http://127.0.0.1:9/v3,tenant1
"""


def test_default_is_ten_minutes():
    config = load_config(text=TEXT, environ={})
    assert config.targets["master"].data_timeout == 600
    assert make_backends(config, environ={})["master"].data_timeout == 600


def test_data_timeout_reaches_the_data_session():
    config = load_config(text=TEXT, overrides=["master.data_timeout=3"], environ={})
    backend = make_backends(config, environ={})["master"]
    assert backend.data_timeout == 3
    assert backend._session("data").timeout == 3  # nothing is contacted to build it


@pytest.mark.parametrize("value", ["0", "soon", "-5"])
def test_bad_values_are_config_errors(value):
    with pytest.raises(ConfigError, match=r"\[master\] data_timeout"):
        load_config(text=TEXT + f"data_timeout = {value}\n", environ={})
