"""``make demo``: the testbed, seeded images, the REST service and a sync through its API."""
