"""Gunicorn entry point for the Glance API (runs inside the testbed venv).

Like Keystone, Glance parses ``sys.argv`` with oslo.config when it builds the app,
so gunicorn's arguments are hidden first.  Config comes from OS_GLANCE_CONFIG_DIR.
"""

import sys

sys.argv = [sys.argv[0]]

from glance.common import wsgi_app  # noqa: E402

application = wsgi_app.init_app()
