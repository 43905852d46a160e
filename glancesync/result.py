"""What a region's sync returns besides its log lines (reference 6.8)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from glancesync.errors import ErrorKind

NONE = "none"
# Per-image outcomes.
OK, ERROR, DONE, FAILED, PLANNED, NOT_RUN = "ok", "error", "done", "failed", "planned", "not_run"
# Kept in memory for the service's metrics, never in the REST form (``to_dict``).
_KIND = "error_kind"


@dataclass
class ImageResult:
    name: str
    statusBefore: str | None  # noqa: N815 - the REST field name
    action: str
    result: str
    error: str | None = None
    # The path a copy took (glancesync.transfer): "proxy" or "glance-download"; None for
    # images that were not copied.
    transfer: str | None = None
    # What kind of failure ``error`` is, from the BackendError that failed the image.
    error_kind: ErrorKind | None = None


@dataclass
class RegionResult:
    region: str
    failed: bool = False
    error: str | None = None
    summary: str | None = None
    images: list[ImageResult] = field(default_factory=list)
    # What kind of failure ``error`` is, from the BackendError that failed the region.
    error_kind: ErrorKind | None = None

    def to_dict(self) -> dict:
        """The REST form; ``transfer`` only on the images that were copied, no kinds."""
        body = asdict(self)
        del body[_KIND]
        for image in body["images"]:
            del image[_KIND]
            if image["transfer"] is None:
                del image["transfer"]
        return body

    def error_kinds(self) -> list[ErrorKind]:
        """The kind of each distinct failure of the region (its own and its images'), so
        that the service counts its errors without reading their text. A failure given
        twice (the region's error is the failed image's) is counted once; one recorded
        without a kind is ``other``."""
        failures = [
            (image.error, image.error_kind) for image in self.images if image.result == FAILED
        ]
        if self.failed:
            failures.append((self.error, self.error_kind))
        distinct = dict.fromkeys((error, kind or ErrorKind.OTHER) for error, kind in failures)
        return [kind for _, kind in distinct]
