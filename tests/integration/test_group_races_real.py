"""A fan-out group meeting another task's leftover, on the testbed (issue 21 item 2).

The group asks whether the run that marked an upload is dead from the core's
preparation threads, which have no application context; a preparation that raised used
to drop the other regions' lock files still held, so every later run of those regions
on the host was refused as busy until the service process exited.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from cli_process import finish, start_cli
from fixtures_glance import config_text, region_images, unique
from service_process import POSTGRES, TOKEN_HEADER, ServiceProcess

from glancesync.backends.base import UPLOAD_MARKER

pytestmark = [
    pytest.mark.integration,
    pytest.mark.concurrency,
    pytest.mark.usefixtures("clean_glance"),
]

REGIONS = ["Trento", "Lannion"]
BUSY = "another glancesync run is syncing this region"


def ended_task(svc: ServiceProcess, region: str) -> str:
    """A task of this service's database that ended (its run is dead)."""
    task_id = str(uuid.uuid4())
    with psycopg.connect(f"{POSTGRES}/{svc.database}") as conn:
        conn.execute(
            "INSERT INTO task (task_id, region, status, user_name, created, updated, message,"
            " images, worker, worker_scope, heartbeat, cancel_requested) VALUES (%s, %s,"
            " 'failed', 'old', now(), now(), 'cancelled', '[]', '', '', now(), false)",
            (task_id, region),
        )
    return task_id


def test_a_group_meeting_a_young_upload_of_an_ended_task_syncs_and_frees_its_locks(
    tb_info, images_dir, tmp_path: Path, os_session, add_image, glance
):
    made = add_image(unique("grouprace"))
    locks = tmp_path / "locks"
    svc = ServiceProcess(tb_info, tmp_path / "svc", images_dir, core_main=f"lock_dir = {locks}\n")
    token = os_session("keystone-1").get_token()
    with svc.running():
        marker = f"task:{ended_task(svc, 'Trento')}"
        trento = glance("Trento")
        half = trento.images.create(  # young: far below leftover_age
            name=made.name, disk_format="raw", container_format="bare", **{UPLOAD_MARKER: marker}
        )
        answer = svc.http.post(
            svc.url + "/v1/tasks", json={"regions": REGIONS}, headers={TOKEN_HEADER: token}
        )
        assert answer.status_code == 202, answer.text
        locations = [
            f"/v1/regions/{task['region']}/tasks/{task['taskId']}"
            for task in answer.json()["tasks"]
        ]
        ends = [svc.wait_task(location, token, 120) for location in locations]
        assert [(end["region"], end["status"]) for end in ends] == [
            (region, "synced") for region in REGIONS
        ], [end["message"] for end in ends]
        copies = region_images(trento)
        assert copies[made.name]["id"] != half["id"]  # the dead run's half image went
        assert copies[made.name]["status"] == "active"
        assert UPLOAD_MARKER not in copies[made.name]
        # while the service still runs, a CLI run of each region on this host
        config = tmp_path / "cli" / "glancesync.conf"
        config.parent.mkdir()
        config.write_text(config_text(tb_info, images_dir, main=f"lock_dir = {locks}\n"))
        for region in REGIONS:
            code, out, err = finish(start_cli(config, region))
            assert code == 0 and BUSY not in out + err, (region, out, err)
