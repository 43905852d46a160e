"""``make demo`` prints where the status page is and who may sign in (issue 16)."""

from __future__ import annotations

from demo.__main__ import page_lines

INFO = {
    "keystones": {
        "keystone-1": {
            "admin": {"username": "admin", "password": "admin-pw-1", "project_name": "admin"},
            "demo": {"username": "demo", "password": "demo-pw-1", "project_name": "demo"},
        }
    }
}


def test_demo_prints_the_page_address_and_accounts():
    lines = page_lines(INFO, "http://127.0.0.1:8080")
    assert lines[0] == "  status page: http://127.0.0.1:8080/ui/"
    text = "\n".join(lines)
    assert "admin / admin-pw-1, project admin" in text
    assert "demo / demo-pw-1, project admin (a reader of the master's project: read-only)" in text
