"""Gunicorn entry point for Keystone (runs inside the testbed venv, not the product env).

Keystone's initialiser parses ``sys.argv`` with oslo.config, so gunicorn's own
arguments must be hidden first or it refuses to start.
"""

import sys

sys.argv = [sys.argv[0]]

from keystone.server import wsgi  # noqa: E402

application = wsgi.initialize_public_application()
