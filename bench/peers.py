"""The contenders of ``bench/transfer.py``, each run alone in a child process.

Run as ``python bench/peers.py SPEC.json``: the child imports the client libraries first,
notes its memory high-water mark (the import baseline), then times one peer copying the
master images to the target regions and writes a JSON result to ``spec["result"]``.
A child per peer so that peak RSS and CPU belong to that peer only, not to the harness.

Peers:

- ``loop-seq``  python-glanceclient, the best plain loop: one keystoneauth1 session, for
  each region and image ``create`` then ``data(master)`` streamed into ``upload`` through
  a ``read()`` adapter (no temporary file). Reads the master once per region.
- ``loop-par``  the same loop, one thread per region.
- ``import``    Glance's own ``glance-download`` import: the target Glance pulls the image
  from the master region; the client only creates, starts the import and polls (one
  thread per region, images one after the other).
- ``gs-seq``    the real command line, ``glancesync R1 R2`` (in-process ``cli.main``): master
  listed once (with the first region), regions one after the other.
- ``gs-par``    ``glancesync --parallel`` the same way (``max_children = R``).
- ``gs-multi``  ``GlanceSync.sync_regions`` (one read of the master for every region),
  when the engine has it.
- ``gs-file``   glancesync with ``images_dir`` = the master Glance's file store: the data
  comes from local files, as when glancesync runs on the master's Glance host.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from glancesync.batch import SyncOptions

Spec = dict[str, Any]
IMAGE_FIELDS = {"disk_format": "raw", "container_format": "bare", "visibility": "public"}
POLL_SECONDS = 0.25
IMPORT_TIMEOUT = 600.0


# ---------------------------------------------------------------- measuring ourselves


def vm_hwm_kib() -> int:
    """Peak resident set size of this process so far (kB), as the kernel counts it."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu_seconds() -> float:
    """User + system CPU of every thread of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- OpenStack clients


def make_session(cred: dict[str, str]) -> Any:
    """One keystoneauth1 session (one token) shared by every client of the peer."""
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    auth = v3.Password(
        auth_url=cred["auth_url"],
        username=cred["username"],
        password=cred["password"],
        project_name=cred["project_name"],
        user_domain_name="Default",
        project_domain_name="Default",
    )
    return session.Session(auth=auth, timeout=600)


def glance(sess: Any, region: str) -> Any:
    """A Glance v2 client of ``region``, its endpoint taken from the catalog."""
    from glanceclient import Client

    return Client("2", session=sess, region_name=region, interface="public")


class ChunkReader:
    """``read()`` over an iterator of byte chunks, so ``images.upload`` can stream it.

    glanceclient's upload wants a file-like object; a download is an iterator. A memoryview
    keeps partial reads from copying the rest of a chunk again and again.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._view = memoryview(b"")
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            rest = bytes(self._view[self._pos :]) + b"".join(self._chunks)
            self._view, self._pos = memoryview(b""), 0
            return rest
        while self._pos >= len(self._view):
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._view, self._pos = memoryview(chunk), 0
        piece = bytes(self._view[self._pos : self._pos + size])
        self._pos += len(piece)
        return piece


# ---------------------------------------------------------------- plain loops


def copy_one(master: Any, target: Any, image: dict[str, Any]) -> str:
    """Create the image in the target, then stream the master's bytes into it."""
    new = target.images.create(name=image["name"], **IMAGE_FIELDS)
    body = master.images.data(image["id"])
    target.images.upload(new["id"], ChunkReader(body), image_size=image["size"])
    return str(new["id"])


def target_client(sess: Any, spec: Spec, region: str) -> Any:
    """The Glance of ``region``: glancesync names a region of another target ``other:Madrid``;
    a plain loop needs that cloud's own Keystone session (``spec["target_creds"]``)."""
    cred = spec.get("target_creds", {}).get(region)
    return glance(make_session(cred) if cred else sess, region.split(":")[-1])


def loop_region(sess: Any, spec: Spec, region: str) -> None:
    master, target = glance(sess, spec["master_region"]), target_client(sess, spec, region)
    for image in spec["images"]:
        copy_one(master, target, image)
    region_done(region)


# When each region's copy ended (perf_counter), for per-region finish times (bench/uneven.py)
REGION_DONE: dict[str, float] = {}


def region_done(region: str) -> None:
    REGION_DONE[region] = time.perf_counter()


def loop_seq(spec: Spec) -> None:
    sess = make_session(spec["cred"])
    for region in spec["regions"]:
        loop_region(sess, spec, region)


def loop_par(spec: Spec) -> None:
    sess = make_session(spec["cred"])
    with ThreadPoolExecutor(len(spec["regions"])) as pool:
        jobs = [pool.submit(loop_region, sess, spec, r) for r in spec["regions"]]
        for job in jobs:
            job.result()


# ---------------------------------------------------------------- glance-download import


def start_import(sess: Any, spec: Spec, region: str, image: dict[str, Any]) -> tuple[Any, str]:
    target = glance(sess, region)
    new = target.images.create(name=image["name"], **IMAGE_FIELDS)
    target.images.image_import(
        new["id"],
        method="glance-download",
        remote_region=spec["master_region"],
        remote_image_id=image["id"],
    )
    return target, str(new["id"])


def import_state(client: Any, image_id: str) -> str:
    """'done', 'wait' or 'failed'; a failed import leaves the image queued with a marker."""
    record = client.images.get(image_id)
    if record["status"] == "active":
        return "done"
    if record["status"] in ("killed", "deleted") or record.get("os_glance_failed_import"):
        return "failed"
    return "wait"


def import_region(sess: Any, spec: Spec, region: str) -> None:
    """One image after the other: the testbed Glance (SQLite) fails concurrent imports.

    Two glance-download tasks at once in one Glance sometimes die with "database is
    locked"; one at a time per region, all regions at once, is as parallel as loop-par.
    """
    for image in spec["images"]:
        client, image_id = start_import(sess, spec, region, image)
        wait_imported(client, image_id)


def wait_imported(client: Any, image_id: str) -> None:
    deadline = time.monotonic() + IMPORT_TIMEOUT
    while (state := import_state(client, image_id)) == "wait":
        if time.monotonic() > deadline:
            raise RuntimeError(f"import of {image_id} still running after {IMPORT_TIMEOUT}s")
        time.sleep(POLL_SECONDS)
    if state == "failed":
        raise RuntimeError(f"glance-download import of {image_id} failed")


def glance_download(spec: Spec) -> None:
    """The target Glances pull from the master, one thread per region polling its imports."""
    if any(r in spec.get("target_creds", {}) for r in spec["regions"]):
        raise NotImplementedError("glance-download works within one Keystone only")
    sess = make_session(spec["cred"])
    with ThreadPoolExecutor(len(spec["regions"])) as pool:
        jobs = [pool.submit(import_region, sess, spec, r) for r in spec["regions"]]
        for job in jobs:
            job.result()


# ---------------------------------------------------------------- glancesync


def gs_engine(spec: Spec, config_text: str) -> Any:
    from glancesync.config import load_config
    from glancesync.engine import GlanceSync

    return GlanceSync(load_config(text=config_text, environ={}))


def check_results(results: Iterable[Any]) -> None:
    failed = [getattr(r, "region", "?") for r in results if getattr(r, "failed", False)]
    if failed:
        raise RuntimeError(f"glancesync failed in {failed}")


def gs_seq(spec: Spec) -> None:
    """The real command line, ``glancesync R1 R2`` (one region after the other)."""
    run_cli(spec, [])


def gs_file(spec: Spec) -> None:
    gs = gs_engine(spec, spec["gs_config_file"])
    catalogue = gs.load_master()
    check_results([gs.sync_region(r, catalogue=catalogue) for r in spec["regions"]])


def gs_multi(spec: Spec) -> None:
    gs = gs_engine(spec, spec["gs_config"])
    if not hasattr(gs, "sync_regions"):
        raise NotImplementedError("GlanceSync.sync_regions is not there yet")
    regions = list(spec["regions"])
    if spec.get("data_timeout"):  # a short one for a stalled region (bench/uneven.py)
        for backend in gs.backends.values():
            backend.data_timeout = spec["data_timeout"]
    # One worker per region, as gs-par's max_children = R: fewer would serialise regions.
    options = SyncOptions(
        max_workers=len(regions), on_done=lambda ref, result: region_done(ref.full)
    )
    results = gs.sync_regions(regions, options)
    if isinstance(results, dict):
        results = list(results.values())
    expected = set(spec.get("expect_failed", ()))
    check_results([r for r in results if getattr(r, "region", None) not in expected])


def gs_par(spec: Spec) -> None:
    """The real command line, ``glancesync --parallel R1 R2``."""
    run_cli(spec, ["--parallel"])


def run_cli(spec: Spec, options: list[str]) -> None:
    """``glancesync [options] R1 R2`` run in this process (interpreter start-up not counted)."""
    from glancesync.cli import main

    path = os.path.join(spec["rundir"], "glancesync.conf")
    with open(path, "w") as conf:
        conf.write(spec["gs_config"])
    os.environ["GLANCESYNC_CONFIG"] = path
    os.chdir(spec["rundir"])  # --parallel writes its sync_<date> log folder here
    code = main([*options, *spec["regions"]])
    if code != 0:
        raise RuntimeError(f"glancesync {' '.join(options)} exited with {code}")


PEERS: dict[str, Callable[[Spec], None]] = {
    "loop-seq": loop_seq,
    "loop-par": loop_par,
    "import": glance_download,
    "gs-seq": gs_seq,
    "gs-par": gs_par,
    "gs-multi": gs_multi,
    "gs-file": gs_file,
}


def preload() -> None:
    """Import everything any peer needs, so the baseline RSS is the same for all."""
    import glanceclient.v2.client  # noqa: F401
    import keystoneauth1.identity.v3  # noqa: F401
    import keystoneauth1.session  # noqa: F401

    try:
        import glancesync.backends.glance  # noqa: F401
        import glancesync.cli  # noqa: F401
    except ImportError:
        pass


def run(spec: Spec) -> dict[str, Any]:
    """Time one peer; errors are reported in the result, the harness decides what to do."""
    os.environ.update(spec.get("env", {}))  # e.g. GLANCESYNC_RETRY_ATTEMPTS (bench/uneven.py)
    if spec.get("code"):  # another checkout of glancesync, e.g. the code before a change
        sys.path.insert(0, spec["code"])
    preload()
    baseline, cpu0 = vm_hwm_kib(), cpu_seconds()
    t0 = time.perf_counter()
    error = None
    try:
        PEERS[spec["peer"]](spec)
    except NotImplementedError as exc:
        error = f"skipped: {exc}"
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        error = f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - t0
    return {
        "region_s": {region: done - t0 for region, done in REGION_DONE.items()},
        "peer": spec["peer"],
        "wall_s": wall,
        "cpu_s": cpu_seconds() - cpu0,
        "rss_baseline_kib": baseline,
        "rss_peak_kib": vm_hwm_kib(),
        "threads_at_end": threading.active_count(),
        "error": error,
    }


def main(argv: list[str]) -> int:
    with open(argv[1]) as handle:
        spec = json.load(handle)
    result = run(spec)
    with open(spec["result"], "w") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
