"""The ``glancesync`` command (reference 7)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Sequence

import glancesync
from glancesync import report
from glancesync.backup import make_backup
from glancesync.config import load_config
from glancesync.engine import LOGGER_NAME, GlanceSync
from glancesync.errors import BackendError, ConfigError, UsageError
from glancesync.gcpause import cyclic_gc_paused
from glancesync.interrupts import SignalStop, Stop, stop_on_signals
from glancesync.leftovers import Runs, cli_run_dead
from glancesync.parallel import run_parallel
from glancesync.progress import progress_factory
from glancesync.regions import RegionRef, check_region_args

DESCRIPTION = "A tool to sync images from a master region to other regions"
EPILOG = """\
examples:
  glancesync                       sync every region of the master target
  glancesync Burgos other:Madrid   sync Burgos, and Madrid of the target [other]
  glancesync --dry-run Burgos      print what a sync of Burgos would do
  glancesync --show-status other:  status of every region of the target [other]
  glancesync --parallel master:    sync the master target's regions in parallel
  glancesync --config main.master_region=Spain2 -- Trento Lannion

configuration:
  read from the file named by GLANCESYNC_CONFIG, else /etc/glancesync/glancesync.conf,
  else /etc/glancesync.conf, else defaults only; --config items override it.
  Whatever [master] lacks comes from OS_REGION_NAME, OS_USERNAME, OS_PASSWORD,
  OS_AUTH_URL and OS_TENANT_NAME.

exit codes:
  0  every region synchronised (or the report was printed)
  1  at least one region failed
  2  wrong command line or configuration
  130, 143  interrupted by SIGINT (Ctrl-C) or SIGTERM
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glancesync",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "region",
        nargs="*",
        help="region to sync: Burgos, target:Madrid, or target: for all regions of a "
        "target (default: every region of the master target)",
    )
    parser.add_argument(
        "--version", action="version", version=f"glancesync {glancesync.__version__}"
    )
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="sync up to max_children regions at a time, each logging to its own file "
        "in a new sync_<date>_<time> folder",
    )
    parser.add_argument(
        "--config",
        nargs="+",
        action="extend",
        metavar="KEY=VALUE",
        help="override configuration options, [section.]key=value; regions go before "
        "--config or after -- (e.g. main.master_region=Valladolid "
        "metadata_condition='image.name==\"name1\"')",
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--dry-run",
        action="store_true",
        help="print what a sync would do, without changing anything",
    )
    modes.add_argument(
        "--show-status",
        action="store_true",
        help="print the status of each synchronisable image as CSV lines "
        "(status,region,image); changes nothing",
    )
    modes.add_argument(
        "--show-regions",
        action="store_true",
        help="print the regions of every target, without syncing",
    )
    modes.add_argument(
        "--make-backup",
        action="store_true",
        help="save the metadata of every image of the regions (and of the master "
        "region) as CSV files in a new backup_glance_<timestamp> folder",
    )
    return parser


@contextlib.contextmanager
def cli_logging(stream) -> Iterator[logging.Logger]:
    """``LEVEL:message`` lines of the core logger on ``stream`` (7.7), for one command.

    The logger is put back as it was afterwards, so embedding programs and tests keep
    their own logging set-up.
    """
    log = logging.getLogger(LOGGER_NAME)
    saved = (list(log.handlers), log.level, log.propagate)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s:%(message)s"))
    log.handlers = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield log
    finally:
        handler.flush()
        log.handlers, log.level, log.propagate = saved[0], saved[1], saved[2]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    data_mode = args.show_status or args.show_regions or args.make_backup
    # Syncs stop cleanly on SIGINT/SIGTERM (glancesync.interrupts); read-only modes have
    # nothing to clean up and stop at once.
    with (
        cli_logging(sys.stderr if data_mode else sys.stdout) as log,
        stop_on_signals(at_once=data_mode) as stop,
    ):
        if not data_mode:
            return run(args, log, stop)
        # Read-only modes are short and allocate per image: see glancesync.gcpause.
        with cyclic_gc_paused():
            return run(args, log, stop)


def run(args: argparse.Namespace, log: logging.Logger, stop: Stop | None = None) -> int:
    stop = stop or Stop()
    try:
        config = load_config(overrides=args.config or [])
        for warning in config.warnings:  # about the setup, not the sync: never on stdout
            print(f"WARNING:{warning}", file=sys.stderr)
        check_region_args(args.region, config.targets)  # before any network access
        gs = GlanceSync(config, log=log)
        code = run_mode(gs, args, log, stop)
        return stop.exit_code if stop.requested else code
    except (ConfigError, UsageError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except BackendError as exc:
        log.error(str(exc))
        return 1
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, SignalStop) else stop.signum
        name = f" by {signal.Signals(signum).name}" if signum else ""
        print(f"ERROR: interrupted{name}", file=sys.stderr)
        return 128 + (signum or 2)


def run_mode(
    gs: GlanceSync, args: argparse.Namespace, log: logging.Logger, stop: Stop | None = None
) -> int:
    stop = stop or Stop()
    if args.show_regions:
        print(" ".join(gs.show_regions()))
        return 0
    regions = gs.region_list(args.region)
    if args.show_status:
        return show_status(gs, regions, log)
    if args.make_backup:
        pairs = [(ref.target, ref.name) for ref in regions]
        _, failed = make_backup(gs.backends, pairs, gs.config.main.master_region, log)
        return 1 if failed else 0
    print(f"======Master is {gs.config.main.master_region}", flush=True)
    runs = Runs(is_dead=cli_run_dead)  # one run id for the whole command
    if args.parallel:
        return run_parallel(gs, regions, args.dry_run, log, stop, runs)
    return sync_sequential(gs, regions, args.dry_run, log, stop, runs)


def show_status(gs: GlanceSync, regions: list[RegionRef], log: logging.Logger) -> int:
    catalogue = gs.load_master(log, prefetch=regions)
    failed = False
    for ref in regions:
        try:
            statuses = gs.view(ref, catalogue, log).status.images
        except BackendError as exc:
            log.error(str(exc))
            failed = True
            continue
        sys.stdout.write(report.status_lines(ref.full, statuses) + "\n")
        sys.stdout.flush()
    return 1 if failed else 0


def sync_sequential(
    gs: GlanceSync,
    regions: list[RegionRef],
    dry_run: bool,
    log: logging.Logger,
    stop: Stop | None = None,
    runs: Runs | None = None,
) -> int:
    """One region after the other; after a signal, the regions not started are skipped."""
    try:
        # only the first region: each next one is listed when its turn comes, not earlier
        catalogue = gs.load_master(log, prefetch=regions[:1])
    except BackendError as exc:
        log.error(str(exc))
        return 1
    progress = progress_factory(sys.stderr)
    failed = False
    for ref in regions:
        if stop is not None and stop.requested:
            break
        print(f"======{ref.full}", flush=True)
        result = gs.sync_region(ref, dry_run, catalogue, log, progress, stop, runs)
        failed = failed or result.failed
    return 1 if failed else 0
