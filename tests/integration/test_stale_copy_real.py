"""An active copy still carrying a dead run's upload marker, on the testbed (issue 21
item 9): a run killed after Glance took the last byte but before it removed
``glancesync_upload`` leaves such a copy. The next run verifies it against the master:
equal checksum and multihash, its marker goes; otherwise it is deleted and uploaded again.
The dead run is a CLI run of this host and process scope whose process is gone.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from fixtures_glance import region_images, unique

from glancesync.backends.base import UPLOAD_MARKER
from glancesync.image import SOURCE_HASH
from glancesync.processes import process_scope

pytestmark = [
    pytest.mark.integration,
    pytest.mark.concurrency,
    pytest.mark.usefixtures("clean_glance"),
]


def dead_run() -> str:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return f"cli:{socket.gethostname()}:{child.stdout.strip()}:dead:{process_scope()}"


def test_a_verified_copy_of_a_dead_run_loses_its_marker(add_image, glance, engine):
    made = add_image(unique("stale"))
    copy = add_image(made.name, region="Trento", data=made.data, **{UPLOAD_MARKER: dead_run()})
    assert copy.record["status"] == "active" and UPLOAD_MARKER in copy.record
    gs, log = engine()
    assert not gs.sync_region("Trento").failed, log.lines
    unmarked = f"INFO:Trento: Image {copy.id} of an interrupted upload verified; marker removed"
    assert unmarked in log.lines, log.lines
    assert not any("Uploading" in line for line in log.lines), log.lines
    images = list(glance("Trento").images.list())
    assert [image["id"] for image in images] == [copy.id]
    assert UPLOAD_MARKER not in images[0] and images[0][SOURCE_HASH] == made.md5


def test_a_copy_of_a_dead_run_that_does_not_verify_is_uploaded_again(add_image, glance, engine):
    made = add_image(unique("stale"))
    other = os.urandom(len(made.data))  # what a broken store would have kept
    copy = add_image(made.name, region="Trento", data=other, **{UPLOAD_MARKER: dead_run()})
    gs, log = engine()
    assert not gs.sync_region("Trento").failed, log.lines
    deleted = f"INFO:Trento: Deleting leftover image {copy.id} of an interrupted upload"
    assert deleted in log.lines, log.lines
    images = region_images(glance("Trento"))
    assert list(images) == [made.name] and images[made.name]["id"] != copy.id
    assert images[made.name]["checksum"] == made.md5 and UPLOAD_MARKER not in images[made.name]
    assert images[made.name]["os_hash_value"] == made.record["os_hash_value"]


def test_a_copy_of_a_live_run_is_left_alone(add_image, glance, engine):
    made = add_image(unique("live"))
    live = f"cli:{socket.gethostname()}:{os.getppid()}:live:{process_scope()}"
    copy = add_image(made.name, region="Trento", data=made.data, **{UPLOAD_MARKER: live})
    gs, log = engine()
    assert not gs.sync_region("Trento").failed, log.lines
    assert dict(glance("Trento").images.get(copy.id))[UPLOAD_MARKER] == live
