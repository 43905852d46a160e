"""Run a region's plan through its backend, or only log it (dry-run, reference 7.5)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from glancesync import convert, converted, member_sync, old_versions, regionlog
from glancesync import planner as pl
from glancesync import result as rs
from glancesync import status as st
from glancesync.backends.base import UPLOAD_MARKER, Backend, ImageSource, ProgressCallback
from glancesync.errors import BackendError, Cancelled, Interrupted, kind_of
from glancesync.image import RENAMED_AT, Image
from glancesync.planner import Action, Plan
from glancesync.retention import renamed_now
from glancesync.transfer import GLANCE_DOWNLOAD, PROXIED, PROXY, RegionTransfer, image_path

__all__ = ["Cancelled", "Executor", "ProgressFactory", "SourceFor", "initial_results"]

MB = 1048576
BUSY_IMAGE = "being uploaded by another run"
_FIRST_LINE = {
    pl.UPLOAD: "Uploading image",
    pl.REPLACE: "Replacing image",
    pl.RENAME: "Renaming and replacing image",
}
_ACTION_OF_STATUS = {
    st.PENDING_METADATA: pl.UPDATE_METADATA,
    st.PENDING_UPLOAD: pl.UPLOAD,
    st.PENDING_REPLACE: pl.REPLACE,
    st.PENDING_RENAME: pl.RENAME,
    st.PENDING_AMI: pl.UPDATE_AMI,
}

SourceFor = Callable[[Image], ImageSource]
# ``progress(region_full, image_name, size)`` is called as each upload starts and returns
# the callback of that upload (called with the bytes of each chunk sent). A factory may
# also have two optional hooks, so that one line per region can show a total and end:
#   ``planned(region_full, nbytes)``: the bytes the region's plan uploads, before it runs;
#   ``ended(region_full, failed_image)``: the region is done; ``failed_image`` names the
#   upload that failed (None when none did).
ProgressFactory = Callable[[str, str, int], ProgressCallback | None]


class _ChunkGuard:
    """The callback an upload gets: forwards each chunk to the display, then checks for a
    cancel, so a multi-GB upload stops within one chunk rather than at its end.

    The chunk that completes the upload never raises: the image is whole by then, and the
    cancel takes effect before the next action instead.
    """

    def __init__(
        self, shown: ProgressCallback | None, should_cancel: Callable[[], bool], size: int
    ):
        self.shown, self.should_cancel, self.size = shown, should_cancel, size
        self.done = 0

    def __call__(self, nbytes: int) -> None:
        self.done += nbytes
        if self.shown is not None:
            self.shown(nbytes)
        if self.done < self.size and self.should_cancel():
            raise Cancelled()


def initial_results(plan: Plan, dry_run: bool) -> list[rs.ImageResult]:
    """One entry per synchronisable image, then one per obsolete update."""
    results = []
    for s in plan.statuses:
        action = _ACTION_OF_STATUS.get(s.status, rs.NONE)
        if s.status in st.FINAL:
            outcome = rs.OK
        elif s.status in st.ERRORS:
            outcome = rs.ERROR
        else:
            outcome = rs.PLANNED if dry_run else rs.NOT_RUN
        results.append(rs.ImageResult(s.name, s.status, action, outcome))
    for a in plan.actions:
        if a.kind == pl.UPDATE_OBSOLETE:
            outcome = rs.PLANNED if dry_run else rs.NOT_RUN
            results.append(rs.ImageResult(a.name, None, pl.UPDATE_OBSOLETE, outcome))
    return results


class Executor:
    """Executes one plan; the first backend error stops the region (6.6)."""

    def __init__(
        self,
        plan: Plan,
        backend: Backend,
        region: str,
        region_map: dict[str, Image],
        log: logging.Logger,
        dry_run: bool,
        source_for: SourceFor,
        progress: ProgressFactory | None = None,
        should_cancel: Callable[[], bool] | None = None,
        run_id: str = "",
        busy: frozenset[str] = frozenset(),
        busy_now: Callable[[str], bool] | None = None,
        listing: list[Image] | tuple[Image, ...] = (),
        tenant_id: str = "",
        keep_old: int | None = None,
        spool_dir: str | None = None,
        transfer: RegionTransfer = PROXIED,
    ):
        self.plan, self.backend, self.region = plan, backend, region
        # ``run_id`` goes in the upload marker; ``busy`` names images another run was
        # uploading at the listing, ``busy_now(name)`` asks again right before an upload
        # (glancesync.leftovers): such images are skipped, never copied twice.
        self.run_id, self.busy, self.busy_now = run_id, busy, busy_now
        self.skipped: set[str] = set()
        self.full = plan.region
        self.map = dict(region_map)
        self.log, self.dry_run = log, dry_run
        self.source_for, self.progress = source_for, progress
        self.should_cancel = should_cancel or (lambda: False)
        self.uploaded_bytes = 0
        # keep_old (glancesync.old_versions): the region's whole listing, and the images
        # this run renamed or deleted, by id
        self.listing, self.tenant_id, self.keep_old = list(listing), tenant_id, keep_old
        self.renamed: dict[str, Image] = {}
        self.deleted: set[str] = set()
        self.spool_dir = spool_dir  # where converted copies are made (glancesync.convert)
        # Server-side copies (glancesync.transfer): the region's path, the path each copy
        # took (for the results), and the bytes that never crossed this host.
        self.transfer = transfer
        self.paths: dict[str, str] = {}
        self.imported_bytes = 0

    def run(self) -> rs.RegionResult:
        failed_upload: str | None = None
        self._hook("planned", self._planned_bytes())
        try:
            result = rs.RegionResult(self.full, images=initial_results(self.plan, self.dry_run))
            entries = self._entries(result.images)
            for action, entry in zip(self.plan.actions, entries, strict=True):
                try:
                    if self.should_cancel():
                        raise Cancelled()
                    with regionlog.region_logging(self.log, self.full):
                        self._run(action)
                except convert.ConversionRefused as exc:  # that image only; the region goes on
                    self.log.error(str(exc))
                    if not result.failed:
                        result.failed, result.error, result.error_kind = True, str(exc), exc.kind
                    if entry is not None:
                        entry.result, entry.error, entry.error_kind = rs.FAILED, str(exc), exc.kind
                    continue
                except Exception as exc:  # noqa: BLE001 - a failure stops this region only (6.6)
                    message, kind = self._error_text(exc), kind_of(exc)
                    self.log.error(self._log_text(exc, message))
                    result.failed, result.error, result.error_kind = True, message, kind
                    if entry is not None:
                        entry.result, entry.error, entry.error_kind = rs.FAILED, message, kind
                        entry.transfer = self.paths.get(action.name)
                    if action.kind in pl.UPLOAD_KINDS:
                        failed_upload = action.name
                    return result
                if action.kind in pl.UPLOAD_KINDS and action.name in self.skipped:
                    if entry is not None:
                        entry.result, entry.error = rs.NOT_RUN, BUSY_IMAGE
                    continue
                if entry is not None and action.kind not in pl.WARNINGS:
                    entry.result = rs.PLANNED if self.dry_run else rs.DONE
                    entry.transfer = self.paths.get(action.name)
            result.images += self._old_versions()
            result.summary = self._summary()
            self.log.info(result.summary)
            return result
        finally:
            self._hook("ended", failed_upload)

    def _old_versions(self) -> list[rs.ImageResult]:
        if self.keep_old is None:
            return []
        images = [self.renamed.get(i.id, i) for i in self.listing if i.id not in self.deleted]
        seen = {i.id for i in images}
        images += [i for i in self.renamed.values() if i.id not in seen]
        return old_versions.keep_old(
            self.backend,
            self.region,
            self.full,
            self.log,
            images,
            self.tenant_id,
            self.keep_old,
            self.dry_run,
        )

    def _renamed(self, image: Image, name: str) -> None:
        """Marks an image this run renames (a real run writes the mark; a dry-run only
        counts it), so keep_old sees it."""
        when = renamed_now()
        if self.dry_run:
            image = image.copy(name=name)
            image.user_properties[RENAMED_AT] = when
        else:
            image = self.backend.mark_renamed(self.region, image, when)
        self.renamed[image.id] = image

    def _planned_bytes(self) -> int:
        return 0 if self.dry_run else self.plan.upload_bytes

    def _hook(self, name: str, value: object) -> None:
        """Call an optional hook of the progress factory (see ``ProgressFactory``)."""
        hook = getattr(self.progress, name, None)
        if hook is not None and not self.dry_run:
            hook(self.full, value)

    def _log_text(self, exc: Exception, message: str) -> str:
        """A cancel's message is the bare ``cancelled`` (10.7); its log line names the region.
        An interrupt says which signal (reference 6.10)."""
        if isinstance(exc, Interrupted):
            return f"{self.full}: {message}"
        return f"{self.full}: sync {message}" if isinstance(exc, Cancelled) else message

    def _error_text(self, exc: Exception) -> str:
        if isinstance(exc, BackendError):
            return str(exc)
        self.log.debug("unexpected error in region %s", self.full, exc_info=True)
        return f"{self.full}: Unexpected error. Cause: {exc!r}"

    def _entries(self, images: list[rs.ImageResult]) -> list[rs.ImageResult | None]:
        """The result entry of each action, in action order.

        Obsolete updates are matched by position, not by name: two region images renamed
        to the same ``<base>_obsolete`` are two entries with one name.
        """
        by_name = {e.name: e for e in images if e.action != pl.UPDATE_OBSOLETE}
        obsolete = iter([e for e in images if e.action == pl.UPDATE_OBSOLETE])
        return [
            next(obsolete) if a.kind == pl.UPDATE_OBSOLETE else by_name.get(a.name)
            for a in self.plan.actions
        ]

    def _run(self, action: Action) -> None:
        if action.kind == pl.UPDATE_OBSOLETE:
            self._obsolete(action)
        elif action.kind in (pl.UPDATE_METADATA, pl.UPDATE_AMI):
            self._update(action)
        elif action.kind in pl.UPLOAD_KINDS:
            self._upload(action)
        elif action.kind == pl.WARN_CHECKSUM:
            region_image = action.region_image
            formats = converted.format_difference(action.master, region_image, action.convert_to)
            self.log.warning(
                f"Image {action.name} has a different checksum "
                f"({converted.rule_checksum(region_image)}) "
                f"in region {self.full} than in the master region. It was not set what to do. "
                "Please, fill either dontupdate, replace or rename with the checksum."
                + (f" The {formats}." if formats else "")
            )
        elif action.kind == pl.WARN_PROTECTED:
            self.log.warning(
                f"{self.full}: image {action.name} is protected and cannot be replaced; "
                "nothing uploaded"
            )

    def _obsolete(self, a: Action) -> None:
        renaming = a.name != a.region_image.name
        if self.dry_run:
            self.log.info(f"{self.full}: Obsolete image pending to update {a.name}")
            if renaming:
                self._renamed(a.region_image, a.name)
            return
        self.log.info(f"{self.full}: updating obsolete image {a.name}")
        image = self.backend.update(self.region, a.region_image, a.name, a.is_public, a.properties)
        if renaming:
            self._renamed(image, a.name)

    def _update(self, a: Action) -> None:
        if self.dry_run:
            self.log.info(f"{self.full}: Image pending to update the metadata {a.name}")
            self._resolve(a)  # the same warnings as the real run
            member_sync.log_planned(self.log, self.full, a)
            return
        self.log.info(f"{self.full}: Updating the metadata of image {a.name}")
        current = self.map[a.name]
        props = {**a.properties, **self._resolve(a)}
        updated = self.backend.update(
            self.region, current, a.name, a.is_public, props, attributes=a.attributes or None
        )
        self.map[a.name] = member_sync.share(
            self.backend, self.region, self.full, self.log, a, updated
        )

    def _upload(self, a: Action) -> None:
        if a.name in self.busy or (
            not self.dry_run and self.busy_now is not None and self.busy_now(a.name)
        ):
            self.log.warning(f"{self.full}: {a.name} is being uploaded by another run; skipped")
            self.skipped.add(a.name)
            return
        mb = f"{a.size / MB:.2f}"
        # a copy this host converts crosses it whatever the region's path
        path = image_path(self.transfer.path, bool(a.convert_to))
        if self.transfer.shown:
            self.paths[a.name] = path
        via = "" if path == PROXY else f", {path}"
        if not self.dry_run or a.kind != pl.UPLOAD:
            self.log.info(f"{self.full}: {_FIRST_LINE[a.kind]} {a.name} ({mb} MB{via})")
        self.uploaded_bytes += a.size
        if self.dry_run:
            self._resolve(a)  # the same warnings as the real run
            self.log.info(f"{self.full}: Pending: {a.name} ({mb} MB{via})")
            if path != PROXY:
                self.imported_bytes += a.size
            member_sync.log_planned(self.log, self.full, a)
            if a.kind == pl.RENAME:
                self._renamed(a.region_image, f"{a.name}.old")
            # stands for the copy the real run would make: later references resolve to it
            self.map[a.name] = a.master
            return
        props = {**a.properties, **self._resolve(a)}
        if self.run_id:
            props[UPLOAD_MARKER] = self.run_id  # the backend removes it once verified
        new = self._import(a, props) if path == GLANCE_DOWNLOAD else self._send(a, props)
        new = member_sync.share(self.backend, self.region, self.full, self.log, a, new)
        old = a.region_image
        if a.kind == pl.REPLACE:
            self.backend.delete(self.region, old.id)
            self.deleted.add(old.id)
        elif a.kind == pl.RENAME:
            renamed = self.backend.update(
                self.region, old, f"{a.name}.old", False, old.user_properties
            )
            self._renamed(renamed, f"{a.name}.old")
        self.map[a.name] = new

    def _send(self, a: Action, props: dict, callback: _ChunkGuard | None = None) -> Image:
        """The upload through this host: the master's data, or its converted copy (made
        first); ``callback`` continues the progress of an import that fell back."""
        source = self.source_for(a.master)
        if not a.convert_to:
            callback = callback or self._callback(a, a.size)
            new = self.backend.upload(self.region, a.master, a.is_public, props, source, callback)
            self.log.info(f"{self.full}: Image uploaded.")
            return new
        fmt = a.master.disk_format
        self.log.info(f"{self.full}: Converting image {a.name} from {fmt} to {a.convert_to}")
        with convert.converted_file(
            self.full, a.master, a.convert_to, source, self.spool_dir, self.should_cancel
        ) as copy:
            image = converted.upload_image(
                a.master, a.convert_to, copy.md5, copy.size, copy.hash_value
            )
            props = converted.upload_properties(props, a.master, copy.md5)
            new = self.backend.upload(
                self.region, image, a.is_public, props, copy, self._callback(a, copy.size)
            )
        self.log.info(f"{self.full}: Image uploaded.")
        return new

    def _callback(self, a: Action, size: int) -> _ChunkGuard:
        shown = self.progress(self.full, a.name, size) if self.progress else None
        return _ChunkGuard(shown, self.should_cancel, size)

    def _import(self, a: Action, props: dict) -> Image:
        """The server-side copy; with ``auto``, an import that fails (not a cancel or an
        interrupt) is copied once more through this host, with a warning."""
        importer = self.transfer.importer
        callback = self._callback(a, a.size)
        try:
            if importer is None:
                raise BackendError(f"{self.full}: the backend cannot import server-side")
            new = importer(a.master, a.is_public, props, callback)
        except (Cancelled, Interrupted):
            raise
        except BackendError as exc:
            if not self.transfer.fallback:
                raise
            self.log.warning(f"{exc} Copying {a.name} through this host instead.")
            self.paths[a.name] = PROXY
            callback.done = 0
            return self._send(a, props, callback)
        self.imported_bytes += a.size
        self.log.info(f"{self.full}: Image imported server-side.")
        return new

    def _resolve(self, a: Action) -> dict[str, str]:
        """kernel_id/ramdisk_id names to region ids; unknown names are left out (reference 6.3)."""
        ids = {}
        for prop, ref in a.ami_refs.items():
            if ref in self.map:
                ids[prop] = self.map[ref].id
            else:
                self.log.warning(
                    f"{self.full}: Not found {ref} on region. It should be {prop} of image {a.name}"
                )
        return ids

    def _summary(self) -> str:
        if self.plan.nothing_pending:
            return f"{self.full}: Region is synchronized."
        total = int(self.uploaded_bytes / MB)
        server_side = int(self.imported_bytes / MB)
        if self.dry_run:
            more = f", {server_side} server-side" if self.imported_bytes else ""
            return f"{self.full}: MBs pending : {total}{more}"
        line = f"{self.full}:   Total uploaded to region: {total} (MB) "
        if self.imported_bytes:
            line = f"{line.rstrip()}, {server_side} (MB) server-side"
        return line
