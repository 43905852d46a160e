#!/usr/bin/env python
"""Run and manage the GlanceSync REST service from a checkout (reference 11.5).

The operational commands are ``app.commands`` (installed as ``glancesync-manage``); this
file adds the authoring commands of ``db`` (``migrate``, ``revision``, ``merge``...) that
write migration scripts into ``app/migrations``, which only a checkout needs.
"""

from __future__ import annotations

import sys

from app.commands import cli, db_group, main

cli.add_command(db_group())  # every Flask-Migrate command, replacing the operational subset

if __name__ == "__main__":
    sys.exit(main(prog_name="manage.py"))
