"""The CLI as an operator uses it (reference 7, worked example 12.1)."""

from __future__ import annotations

from glancesync.backends.csvfile import read_folder
from tests.support.cli_files import BASIC_CONFIG


def test_modes_are_mutually_exclusive(run):
    run.scenario("basic")
    code, out, err = run("--dry-run", "--show-status")
    assert code == 2
    assert "not allowed with argument" in err


def test_show_status_prints_csv_on_stdout_only(run):
    run.scenario("basic")
    code, out, err = run("--show-status", "Burgos", "other:Madrid")
    assert code == 0
    assert out == (
        "ok,Burgos,img01\npending_metadata,Burgos,img02\npending_upload,Burgos,img05\n\n"
        "pending_upload,other:Madrid,img01\npending_upload,other:Madrid,img05\n\n"
    )


def test_show_regions(run):
    run.scenario("basic")
    code, out, _ = run("--show-regions")
    assert (code, out) == (0, "Burgos other:Madrid\n")


def test_sync_prints_the_documented_log_and_second_run_is_quiet(run):
    run.scenario("basic")
    code, out, _ = run("Burgos", "other:Madrid")
    assert code == 0
    assert out == (
        "======Master is Valladolid\n"
        "======Burgos\n"
        "INFO:Burgos: Updating the metadata of image img02\n"
        "INFO:Burgos: Uploading image img05 (50.00 MB)\n"
        "INFO:Burgos: Image uploaded.\n"
        "INFO:Burgos:   Total uploaded to region: 50 (MB) \n"
        "======other:Madrid\n"
        "INFO:other:Madrid: Uploading image img01 (10.00 MB)\n"
        "INFO:other:Madrid: Image uploaded.\n"
        "INFO:other:Madrid: Uploading image img05 (50.00 MB)\n"
        "INFO:other:Madrid: Image uploaded.\n"
        "INFO:other:Madrid:   Total uploaded to region: 60 (MB) \n"
    )
    code, out, _ = run("Burgos", "other:Madrid")
    assert "INFO:Burgos: Region is synchronized.\n" in out
    assert "INFO:other:Madrid: Region is synchronized.\n" in out


def test_dry_run_leaves_the_mock_byte_identical(run):
    run.scenario("mixed")
    before = run.files()
    code, out, _ = run("--dry-run")
    assert code == 0
    assert run.files() == before
    assert "INFO:Burgos: Image pending to update the metadata image02" in out
    assert "INFO:Burgos: Pending: image06 (1024.00 MB)" in out
    assert "INFO:Burgos: Replacing image image10 (1024.00 MB)" in out
    assert "INFO:Burgos: MBs pending : " in out
    assert "Uploading" not in out


def test_dry_run_of_obsolete_images_writes_nothing(run):
    run.scenario("obsolete")
    before = run.files()
    code, out, _ = run("--dry-run", "Burgos")
    assert code == 0
    assert run.files() == before
    assert "INFO:Burgos: Obsolete image pending to update ubuntu_obsolete" in out


def test_failed_region_gives_exit_1_and_the_next_region_syncs(run):
    run.scenario("failing_region")
    (run.store / "mock_faults").write_text("Burgos,upload,1\n")
    code, out, _ = run("Burgos", "Caceres")
    assert code == 1
    assert "ERROR:Burgos: Upload of image02 Failed. Cause: injected fault" in out
    assert "INFO:Caceres:   Total uploaded to region: 10240 (MB) " in out
    regions = dict(read_folder(str(run.store)))
    assert [i.name for i in regions["Burgos"]] == ["image01"]
    assert len(regions["Caceres"]) == 10


def test_unknown_explicit_region_fails_as_a_region(run):
    run.scenario("basic")
    code, out, _ = run("Nowhere", "Burgos")
    assert code == 1
    assert "ERROR:Nowhere: Error retrieving image list. Cause: region not found" in out
    assert "INFO:Burgos:   Total uploaded to region" in out


def test_make_backup_writes_every_region_and_loads_back(run, tmp_path):
    run.scenario("basic")
    code, out, err = run("--make-backup", "Burgos", "other:Madrid")
    assert (code, out) == (0, "")
    assert "INFO:Backup of region Burgos" in err
    folders = [p for p in tmp_path.iterdir() if p.name.startswith("backup_glance_")]
    assert len(folders) == 1
    backup = read_folder(str(folders[0]))
    assert sorted(backup) == ["Burgos", "Valladolid", "other:Madrid"]
    assert backup == read_folder(str(run.store))


def test_parallel_writes_one_log_per_region(run, tmp_path):
    run.scenario("empty_regions", config=BASIC_CONFIG.replace("[main]", "[main]\nmax_children = 3"))
    code, out, _ = run("--parallel", "Burgos", "Caceres", "other:Madrid")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "======Master is Valladolid"
    assert sorted(lines[1:4]) == [
        f"Region {r} has finished" for r in ("Burgos", "Caceres", "other:Madrid")
    ]
    assert lines[4] == "All is done."
    folders = [p for p in tmp_path.iterdir() if p.name.startswith("sync_")]
    assert len(folders) == 1
    logs = {p.name: p.read_text() for p in folders[0].iterdir()}
    assert sorted(logs) == ["Burgos.txt", "Caceres.txt", "other:Madrid.txt"]
    assert "Burgos: Uploading image image01 (1024.00 MB)\n" in logs["Burgos.txt"]
    assert "Caceres" not in logs["Burgos.txt"]
    assert logs["other:Madrid.txt"].endswith(
        "other:Madrid:   Total uploaded to region: 5120 (MB) \n"
    )


def test_parallel_dry_run_writes_nothing(run):
    run.scenario("empty_regions")
    before = run.files()
    code, out, _ = run("--parallel", "--dry-run", "Burgos", "Caceres")
    assert code == 0
    assert run.files() == before
