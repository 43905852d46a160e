"""Plot the figures of ``bench/perf.py`` (its JSON) into one PNG.

Run: ``python bench/plot.py bench/perf.json docs/performance.png``. Needs matplotlib,
which the product does not: ``pip install matplotlib`` (in a bench venv, say). The
script imports nothing else from the repository, so any Python with matplotlib will do.

Not a test: pytest never collects it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

COLORS = {
    "loop-seq": "#999999",
    "loop-par": "#666666",
    "import": "#c9a227",
    "gs-seq": "#1f77b4",
    "gs-multi": "#1f77b4",
}


def rows_of(payload: dict[str, Any], label: str) -> list[dict[str, Any]]:
    return [r for r in payload["rows"] if r["label"] == label and "wall_s" in r]


def bars(ax: Any, rows: list[dict[str, Any]], key: str, names: list[str], title: str) -> None:
    values = [r[key] for r in rows]
    colors = [COLORS.get(r["peer"], "#1f77b4") for r in rows]
    spots = ax.bar(range(len(rows)), values, color=colors)
    ax.set_xticks(range(len(rows)), names, fontsize=8)
    ax.set_title(title, fontsize=10)
    for spot, value in zip(spots, values, strict=True):
        ax.annotate(
            f"{value:.2f}" if value < 10 else f"{value:.0f}",
            (spot.get_x() + spot.get_width() / 2, spot.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )


def name(row: dict[str, Any]) -> str:
    regions = row.get("regions", 1)
    return f"{row['peer']}\n{regions} region{'s' if regions > 1 else ''}"


def main(argv: list[str]) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(argv[1]) as handle:
        payload = json.load(handle)
    out = argv[2] if len(argv) > 2 else "performance.png"
    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    sizes = sorted(
        {int(r["image_mib"]) for r in payload["rows"] if r["label"].startswith("single")}
    )
    for ax, size in zip(axes[0][:2], sizes, strict=False):
        rows = rows_of(payload, f"single-{size}")
        bars(
            ax,
            rows,
            "mib_s",
            [r["peer"] for r in rows],
            f"1 region, {size} MB: MB/s (higher = better)",
        )
    three = rows_of(payload, "three-1region") + rows_of(payload, "three")
    bars(axes[0][2], three, "wall_s", [name(r) for r in three], "200 MB, unthrottled: wall s")
    wan = rows_of(payload, "wan-1region") + rows_of(payload, "wan")
    bars(axes[1][0], wan, "wall_s", [name(r) for r in wan], "200 MB, master at 400 Mbit/s: wall s")
    bars(
        axes[1][1],
        wan,
        "proxy_reads" if wan and "proxy_reads" in wan[0] else "master_reads",
        [name(r) for r in wan],
        "master bytes served / image size (WAN run)",
    )
    rss = [r for r in payload["rows"] if r["label"].startswith("rss") and "wall_s" in r]
    bars(
        axes[1][2],
        rss,
        "rss_peak_mib",
        [f"{r['peer']}\n{r['image_mib']:.0f} MB" for r in rss],
        "peak RSS MB, 3 regions (one process)",
    )
    fig.suptitle("glancesync vs plain glanceclient loops and glance-download (medians)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
