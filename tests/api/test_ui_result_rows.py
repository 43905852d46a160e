"""The page's text of a task's result rows (app/ui/static/ui.js ``resultText``), run in
node (.ci/run installs Debian's nodejs when missing): keep_old's ``delete_old`` rows have
no status before and say what became of the old version."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

UI_JS = Path(__file__).resolve().parents[2] / "app" / "ui" / "static" / "ui.js"
NODE = shutil.which("node")

SCRIPT = """
const src = require("fs").readFileSync(process.argv[1], "utf8");
const code = src.slice(src.indexOf("const OLD_VERSION"), src.indexOf("function resultsOf"));
const resultText = new Function(code + "; return resultText;")();
const rows = JSON.parse(process.argv[2]);
console.log(JSON.stringify(rows.map(resultText)));
"""


def texts(rows: list[dict]) -> list[str]:
    assert NODE, "node is required by this test (Debian's nodejs; .ci/run installs it)"
    done = subprocess.run(
        [NODE, "-e", SCRIPT, str(UI_JS), json.dumps(rows)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def row(name, before, action, result, error=None) -> dict:
    return {
        "name": name,
        "statusBefore": before,
        "action": action,
        "result": result,
        "error": error,
    }


def test_delete_old_rows_say_what_became_of_the_old_version():
    assert texts(
        [
            row("a.old", None, "delete_old", "deleted (keep_old)"),
            row("b.old", None, "delete_old", "not_run", "protected"),
            row("c.old", None, "delete_old", "planned"),
            row("d.old", None, "delete_old", "failed", "Glance said no"),
            row("e", "pending_upload", "upload", "done"),
        ]
    ) == [
        "a.old: old version deleted (keep_old)",
        "b.old: old version kept (keep_old): protected",
        "c.old: old version to delete (keep_old)",
        "d.old: old version not deleted (keep_old): Glance said no",
        "e: pending_upload → upload, done",
    ]
