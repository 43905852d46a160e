"""The files a test REST service reads: its settings, the core configuration and the mock
store's backups (three regions and a failing one)."""

from __future__ import annotations

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"

CORE_CONFIG = """\
[main]
master_region = Valladolid

[master]
credential = user1,cGFzczE=,http://keystone.invalid:5000/v3,tenant1

[other]
credential = user2,cGFzczI=,http://keystone2.invalid:5000/v3,tenant2
"""

BACKUPS = {
    "Valladolid": [
        "Valladolid,img01,001,active,10485760,c01,tenant1id,True,{'type': 'base'}",
        "Valladolid,img02,002,active,20971520,c02,tenant1id,True,{'type': 'base'}",
        "Valladolid,img03,003,active,31457280,c03,tenant1id,True,{'type': 'base'}",
    ],
    "Burgos": [
        "Burgos,img01,101,active,10485760,c01,tenant1id,True,{'type': 'base'}",
        "Burgos,img03,103,active,31457280,zz3,tenant1id,True,{'type': 'base'}",
    ],
    "Caceres": [],
    "other:Madrid": [
        "other:Madrid,img01,201,active,10485760,c01,tenant2id,True,{'type': 'base'}",
    ],
}
FAULTS = "Caceres,list,0\n"

SERVER_CFG = """\
[openstack]
KEYSTONE_URL = http://keystone.invalid:5000/v2.0
ADM_USER = glancesync-admin
ADM_PASS = {password}
ADM_TENANT_NAME = service

[glancesync]
OWNER = Test Owner

[http]
SETTINGS_TYPE = old
"""
SERVICE_PASSWORD = "pa55-very-secret"

LOGGING_CFG = """\
[loggers]
keys = root

[handlers]
keys = null

[formatters]
keys =

[logger_root]
level = DEBUG
handlers = null

[handler_null]
class = NullHandler
args = ()
"""
