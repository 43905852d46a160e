"""Local OpenStack testbed: real Keystone and Glance servers on 127.0.0.1.

Used by the integration tests, the benchmarks and ``make demo``.  Imports nothing from
glancesync; Keystone and Glance themselves run from a separate cached virtualenv.
"""

from testbed.core import MASTER_REGION, TOPOLOGY, Testbed
from testbed.errors import TestbedError

__all__ = ["MASTER_REGION", "TOPOLOGY", "Testbed", "TestbedError"]
