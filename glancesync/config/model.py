"""The configuration as the rest of glancesync sees it: the main options and the targets.

A target is its sync rules plus one ``glancesync.credentials.Connection``: the connection
is never spelled out field by field here. Defaults come from the option table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from glancesync.condition import Condition
from glancesync.config.options import MAIN, TARGET, default
from glancesync.credentials import Connection


@dataclass
class Target:
    """One connection (Keystone, credential, TLS, interface) and the sync rules of its regions."""

    name: str
    connection: Connection = Connection(keystone_url="")  # never in a repr with its secrets
    cloud: str = ""  # the clouds.yaml cloud the connection came from, if any
    forcesyncs: frozenset[str] = default(TARGET, "forcesyncs")
    replace: frozenset[str] = default(TARGET, "replace")
    rename: frozenset[str] = default(TARGET, "rename")
    dontupdate: frozenset[str] = default(TARGET, "dontupdate")
    ignore_regions: tuple[str, ...] = default(TARGET, "ignore_regions")
    metadata_condition: Condition | None = default(TARGET, "metadata_condition")
    metadata_set: frozenset[str] = default(TARGET, "metadata_set")
    only_tenant_images: bool = default(TARGET, "only_tenant_images")
    support_obsolete_images: bool = default(TARGET, "support_obsolete_images")
    obsolete_syncprops: tuple[str, ...] = default(TARGET, "obsolete_syncprops")
    list_images_timeout: int = default(TARGET, "list_images_timeout")
    data_timeout: int = default(TARGET, "data_timeout")
    tenant_id: str | None = default(TARGET, "tenant_id")
    leftover_age: int = default(TARGET, "leftover_age")
    members: str | None = default(TARGET, "members")
    accept_members: bool = default(TARGET, "accept_members")
    keep_old: int | None = default(TARGET, "keep_old")
    convert_to: str = default(TARGET, "convert_to")  # "" (no conversion), "raw" or "qcow2"
    transfer: str = default(TARGET, "transfer")  # glancesync.transfer
    import_timeout: int = default(TARGET, "import_timeout")
    import_interface: str = default(TARGET, "import_interface")
    stores: tuple[str, ...] = default(TARGET, "stores")  # glancesync.stores
    all_stores: bool = default(TARGET, "all_stores")


@dataclass
class MainOptions:
    master_region: str
    preferable_order: tuple[str, ...] = default(MAIN, "preferable_order")
    max_children: int = default(MAIN, "max_children")
    images_dir: str = default(MAIN, "images_dir")
    lock_dir: str = default(MAIN, "lock_dir")  # region lock files (glancesync.regionlock)
    lock_wait: int = default(MAIN, "lock_wait")
    # The fan-out's spool (glancesync.fanout): folder ("" = the system temp folder), MiB cap
    spool_dir: str = default(MAIN, "spool_dir")
    spool_max_mb: int = default(MAIN, "spool_max_mb")


@dataclass
class Config:
    main: MainOptions
    # In configuration-file order; "master" is always present.
    targets: dict[str, Target] = field(default_factory=dict)
    # Where the settings came from: a file path, the name given to a text, or "defaults".
    source: str = ""
    # Warnings found while loading (unknown keys, v2.0 URL rewrites), logged by the caller.
    warnings: list[str] = field(default_factory=list)

    @property
    def master(self) -> Target:
        return self.targets["master"]
