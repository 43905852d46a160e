"""What a region's sync returns besides its log lines (BEHAVIOUR.md 6.8)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

NONE = "none"
# Per-image outcomes.
OK, ERROR, DONE, FAILED, PLANNED, NOT_RUN = "ok", "error", "done", "failed", "planned", "not_run"


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


@dataclass
class RegionResult:
    region: str
    failed: bool = False
    error: str | None = None
    summary: str | None = None
    images: list[ImageResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The REST form; ``transfer`` only on the images that were copied."""
        body = asdict(self)
        for image in body["images"]:
            if image["transfer"] is None:
                del image["transfer"]
        return body
