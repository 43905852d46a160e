"""The REST service signed in with an application credential over TLS (issue 13).

The service validates the tokens of keystone-2 through its TLS front (``CACERT``,
``APPLICATION_CREDENTIAL_ID``/``SECRET``, no ``ADM_USER``/``ADM_PASS``) and syncs
``madrid:Madrid`` with the core target ``madrid``: keystone-2's application credential,
over TLS, by the ``internal`` endpoint of Madrid's Glance.
"""

from __future__ import annotations

import pytest
from fixtures_glance import MASTER, region_images, unique
from service_process import ServiceProcess

from demo.service import get_token

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.usefixtures("clean_glance"),
]


def settings_text(tb_info, service: ServiceProcess) -> str:
    ks2 = tb_info["keystones"]["keystone-2"]
    cred = ks2["app_credential"]
    return (
        "[openstack]\n"
        f"KEYSTONE_URL = {ks2['tls_url']}\n"
        f"APPLICATION_CREDENTIAL_ID = {cred['id']}\n"
        f"APPLICATION_CREDENTIAL_SECRET = {cred['secret']}\n"
        f"CACERT = {tb_info['tls']['ca']}\n"
        "INTERFACE = internal\n\n"
        f"[glancesync]\nHOST = 127.0.0.1\nPORT = {service.port}\n\n"
        f"[database]\nURL = postgresql://postgres@127.0.0.1:5432/{service.database}\n\n"
        f"[gunicorn]\nWORKERS = 1\nPIDFILE = {service.folder}/gunicorn.pid\nLOGLEVEL = warning\n"
    )


def core_text(tb_info, images_dir) -> str:
    ks1, ks2 = tb_info["keystones"]["keystone-1"], tb_info["keystones"]["keystone-2"]
    admin, cred = ks1["admin"], ks2["app_credential"]
    return (
        f"[main]\nmaster_region = {MASTER}\nimages_dir = {images_dir}\n\n"
        f"[master]\nkeystone_url = {ks1['url']}\nuser = {admin['username']}\n"
        f"password = {admin['password']}\ntenant = {admin['project_name']}\n\n"
        f"[madrid]\nkeystone_url = {ks2['tls_url']}\ncacert = {tb_info['tls']['ca']}\n"
        f"interface = internal\napplication_credential_id = {cred['id']}\n"
        f"application_credential_secret = {cred['secret']}\n"
    )


def test_service_validates_and_syncs_over_tls_with_an_application_credential(
    tb_info, tmp_path, add_image, glance
):
    name = unique("svc-tls")
    made = add_image(name)
    service = ServiceProcess(tb_info, tmp_path / "service", tmp_path)
    (service.folder / "fiware-glancesync.cfg").write_text(settings_text(tb_info, service))
    (service.folder / "glancesync.conf").write_text(core_text(tb_info, tmp_path))
    secret = tb_info["keystones"]["keystone-2"]["app_credential"]["secret"]
    service.secrets.append(secret)
    token = get_token(tb_info["keystones"]["keystone-2"])
    with service.running():
        assert service.get("/v1/regions/madrid:Madrid/tasks", "not-a-token").status_code == 401
        answer = service.post("/v1/regions/madrid:Madrid/tasks", token)
        assert answer.status_code == 202, answer.text
        task = service.wait_task(answer.headers["Location"], token, timeout=120)
        assert task["status"] == "synced", task
        assert region_images(glance("Madrid"))[name]["checksum"] == made.md5
        assert secret not in str(task) and secret not in answer.text
        service.assert_no_secret_logged([token])
