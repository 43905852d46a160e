"""The ``glancesync`` command (BEHAVIOUR.md 7)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Sequence

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
from glancesync.regions import RegionRef

DESCRIPTION = "A tool to sync images from a master region to other regions"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glancesync", description=DESCRIPTION)
    parser.add_argument("region", nargs="*", help="region where the images are uploaded to")
    parser.add_argument("--parallel", action="store_true", help="sync several regions in parallel")
    parser.add_argument(
        "--config",
        nargs="+",
        help="override configuration options. (e.g. main.master_region=Valladolid "
        "metadata_condition='image.name==\"name1\"')",
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--dry-run", action="store_true", help="do not upload actually the images")
    modes.add_argument(
        "--show-status",
        action="store_true",
        help="do not sync, but show the synchronisation status",
    )
    modes.add_argument(
        "--show-regions",
        action="store_true",
        help="don not sync, only show the available regions",
    )
    modes.add_argument(
        "--make-backup",
        action="store_true",
        help="do no sync, make a backup of the regions' metadata",
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
        for warning in config.warnings:
            log.warning(warning)
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
