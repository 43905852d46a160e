"""Run a region's plan through its backend, or only log it (dry-run, D5)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from glancesync import planner as pl
from glancesync import result as rs
from glancesync import status as st
from glancesync.backends.base import Backend, ImageSource, ProgressCallback
from glancesync.errors import BackendError, Cancelled
from glancesync.image import Image
from glancesync.planner import Action, Plan

__all__ = ["Cancelled", "Executor", "ProgressFactory", "SourceFor", "initial_results"]

MB = 1048576
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
    ):
        self.plan, self.backend, self.region = plan, backend, region
        self.full = plan.region
        self.map = dict(region_map)
        self.log, self.dry_run = log, dry_run
        self.source_for, self.progress = source_for, progress
        self.should_cancel = should_cancel or (lambda: False)
        self.uploaded_bytes = 0

    def run(self) -> rs.RegionResult:
        failed_upload: str | None = None
        self._hook("planned", self._planned_bytes())
        try:
            result = rs.RegionResult(self.full, images=initial_results(self.plan, self.dry_run))
            entries = self._entries(result.images)
            for action in self.plan.actions:
                entry = entries.get((action.kind == pl.UPDATE_OBSOLETE, action.name))
                try:
                    if self.should_cancel():
                        raise Cancelled()
                    self._run(action)
                except Exception as exc:  # noqa: BLE001 - a failure stops this region only (6.6)
                    message = self._error_text(exc)
                    self.log.error(self._log_text(exc, message))
                    result.failed, result.error = True, message
                    if entry is not None:
                        entry.result, entry.error = rs.FAILED, message
                    if action.kind in pl.UPLOAD_KINDS:
                        failed_upload = action.name
                    return result
                if entry is not None and action.kind not in pl.WARNINGS:
                    entry.result = rs.PLANNED if self.dry_run else rs.DONE
            result.summary = self._summary()
            self.log.info(result.summary)
            return result
        finally:
            self._hook("ended", failed_upload)

    def _planned_bytes(self) -> int:
        return 0 if self.dry_run else self.plan.upload_bytes

    def _hook(self, name: str, value: object) -> None:
        """Call an optional hook of the progress factory (see ``ProgressFactory``)."""
        hook = getattr(self.progress, name, None)
        if hook is not None and not self.dry_run:
            hook(self.full, value)

    def _log_text(self, exc: Exception, message: str) -> str:
        """A cancel's message is the bare ``cancelled`` (10.7); its log line names the region."""
        return f"{self.full}: sync {message}" if isinstance(exc, Cancelled) else message

    def _error_text(self, exc: Exception) -> str:
        if isinstance(exc, BackendError):
            return str(exc)
        self.log.debug("unexpected error in region %s", self.full, exc_info=True)
        return f"{self.full}: Unexpected error. Cause: {exc!r}"

    @staticmethod
    def _entries(images: list[rs.ImageResult]) -> dict[tuple[bool, str], rs.ImageResult]:
        return {(e.action == pl.UPDATE_OBSOLETE, e.name): e for e in images}

    def _run(self, action: Action) -> None:
        if action.kind == pl.UPDATE_OBSOLETE:
            self._obsolete(action)
        elif action.kind in (pl.UPDATE_METADATA, pl.UPDATE_AMI):
            self._update(action)
        elif action.kind in pl.UPLOAD_KINDS:
            self._upload(action)
        elif action.kind == pl.WARN_CHECKSUM:
            self.log.warning(
                f"Image {action.name} has a different checksum ({action.region_image.checksum}) "
                f"in region {self.full} than in the master region. It was not set what to do. "
                "Please, fill either dontupdate, replace or rename with the checksum."
            )
        elif action.kind == pl.WARN_PROTECTED:
            self.log.warning(
                f"{self.full}: image {action.name} is protected and cannot be replaced; "
                "nothing uploaded"
            )

    def _obsolete(self, a: Action) -> None:
        if self.dry_run:
            self.log.info(f"{self.full}: Obsolete image pending to update {a.name}")
            return
        self.log.info(f"{self.full}: updating obsolete image {a.name}")
        self.backend.update(self.region, a.region_image, a.name, a.is_public, a.properties)

    def _update(self, a: Action) -> None:
        if self.dry_run:
            self.log.info(f"{self.full}: Image pending to update the metadata {a.name}")
            return
        self.log.info(f"{self.full}: Updating the metadata of image {a.name}")
        current = self.map[a.name]
        props = {**a.properties, **self._resolve(a)}
        self.map[a.name] = self.backend.update(
            self.region, current, a.name, a.is_public, props, attributes=a.attributes or None
        )

    def _upload(self, a: Action) -> None:
        mb = f"{a.size / MB:.2f}"
        if not self.dry_run or a.kind != pl.UPLOAD:
            self.log.info(f"{self.full}: {_FIRST_LINE[a.kind]} {a.name} ({mb} MB)")
        self.uploaded_bytes += a.size
        if self.dry_run:
            self.log.info(f"{self.full}: Pending: {a.name} ({mb} MB)")
            return
        props = {**a.properties, **self._resolve(a)}
        shown = self.progress(self.full, a.name, a.size) if self.progress else None
        callback = _ChunkGuard(shown, self.should_cancel, a.size)
        new = self.backend.upload(
            self.region, a.master, a.is_public, props, self.source_for(a.master), callback
        )
        self.log.info(f"{self.full}: Image uploaded.")
        old = a.region_image
        if a.kind == pl.REPLACE:
            self.backend.delete(self.region, old.id)
        elif a.kind == pl.RENAME:
            self.backend.update(self.region, old, f"{a.name}.old", False, old.user_properties)
        self.map[a.name] = new

    def _resolve(self, a: Action) -> dict[str, str]:
        """kernel_id/ramdisk_id names to region ids; unknown names are left out (E2)."""
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
        if self.dry_run:
            return f"{self.full}: MBs pending : {total}"
        return f"{self.full}:   Total uploaded to region: {total} (MB) "
