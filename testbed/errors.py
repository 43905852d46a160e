"""The one exception type the CLI turns into a clean message (no traceback)."""


class TestbedError(RuntimeError):
    """Something in the testbed could not be set up, started or stopped."""

    __test__ = False  # not a pytest test class despite the name
