"""A settings file of the REST service, as an operator writes it."""

from __future__ import annotations

from pathlib import Path

MINIMAL = """\
[openstack]
KEYSTONE_URL: http://ks:5000
ADM_USER: svc
ADM_PASS: secret%pass
ADM_TENANT_NAME: service
"""


def write(folder: Path, text: str, name: str = "fiware-glancesync.cfg") -> str:
    path = folder / name
    path.write_text(text)
    return str(path)
