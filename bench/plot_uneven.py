"""Plot ``bench/uneven.py``'s JSON: per-region finish times over uneven links, a stalled
region, and the service's one POST against three.

Run: ``python bench/plot_uneven.py bench/uneven.json [more.json...] docs/uneven.png``.
A scenario is taken from the first file that has it, so each panel shows one run.
Needs matplotlib (bench only, e.g. in a separate venv); imports nothing from the repository.

Not a test: pytest never collects it.
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

REGIONS = ["Trento", "other:Madrid", "Lannion"]


def series(label: str) -> list[tuple[str, str, str, str]]:
    """(run label, peer, legend, colour) of the bars of one scenario."""
    return [
        (f"{label}-alone", "gs-multi", "glancesync, region alone", "#9ecae1"),
        (label, "gs-multi", "glancesync, 3 regions (one master read)", "#1f77b4"),
        (label, "loop-par", "parallel glanceclient loops (3 master reads)", "#888888"),
    ]


def good(runs: list[dict[str, Any]], label: str, peer: str) -> list[dict[str, Any]]:
    return [
        r
        for r in runs
        if r["label"] == label
        and r["peer"] == peer
        and r.get("check") == "ok"
        and not r.get("error")
    ]


def finish(runs: list[dict[str, Any]], label: str, peer: str, region: str) -> float:
    times = [
        r["region_s"][region] for r in good(runs, label, peer) if region in r.get("region_s", {})
    ]
    return statistics.median(times) if times else 0.0


def region_bars(ax: Any, runs: list[dict[str, Any]], bars: list, title: str) -> None:
    width = 0.8 / len(bars)
    for i, (label, peer, legend, colour) in enumerate(bars):
        values = [finish(runs, label, peer, region) for region in REGIONS]
        xs = [x + i * width for x in range(len(REGIONS))]
        spots = ax.bar(xs, values, width, label=legend, color=colour)
        for spot, value in zip(spots, values, strict=True):
            if value:
                ax.annotate(
                    f"{value:.1f}",
                    (spot.get_x() + spot.get_width() / 2, value),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(
        [x + 0.4 - width / 2 for x in range(len(REGIONS))],
        ["Trento 400", "Madrid 400", "Lannion 50 Mbit/s"],
        fontsize=8,
    )
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)


def service_bars(ax: Any, runs: list[dict[str, Any]]) -> None:
    ways = ["one POST /v1/tasks", "three POSTs"]
    walls, reads = [], []
    for way in ways:
        mine = [
            r for r in runs if r["label"] == "service" and r["peer"] == way and r["check"] == "ok"
        ]
        walls.append(statistics.median(r["wall_s"] for r in mine) if mine else 0.0)
        reads.append(
            statistics.median(r["master_bytes"] / r["image_bytes"] for r in mine) if mine else 0.0
        )
    spots = ax.bar([0, 1], reads, color=["#1f77b4", "#888888"])
    for spot, read, wall in zip(spots, reads, walls, strict=True):
        ax.annotate(
            f"{read:.2f} reads\n{wall:.1f} s",
            (spot.get_x() + spot.get_width() / 2, read),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks([0, 1], ways, fontsize=8)
    ax.set_ylim(0, max(reads + [1]) * 1.4)
    ax.set_title("service, 3 regions: master bytes / image (and wall s)", fontsize=10)


def main(argv: list[str]) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    *inputs, out = argv[1:]
    payloads = []
    for path in inputs:
        with open(path) as handle:
            payloads.append(json.load(handle))
    runs: list[dict[str, Any]] = []
    for payload in payloads:  # a scenario comes from the first file that has it (one run)
        seen = {r["label"] for r in runs}
        runs += [r for r in payload["runs"] if r["label"] not in seen]
    args = {**payloads[-1]["args"], "size": payloads[0]["args"]["size"]}
    fig, axes = plt.subplots(2, 3, figsize=(18, 8))
    region_bars(axes[0][0], runs, series("uneven"), f"{args['size']} MB: finish per region, s")
    region_bars(axes[0][1], runs, series("big"), f"{args['size_big']} MB: finish per region, s")
    before = [
        ("before-uneven", "gs-multi-before", "lock-step broadcast (before)", "#ff7f0e"),
        ("before-uneven", "gs-multi", "spool (now)", "#1f77b4"),
    ]
    region_bars(axes[0][2], runs, before, f"{args['size']} MB, same links: before vs now, s")
    stall = [
        ("uneven-alone", "gs-multi", "region alone", "#9ecae1"),
        ("stall", "gs-multi", "3 regions, Lannion stalled at 10 % (fails alone)", "#d62728"),
    ]
    region_bars(axes[1][0], runs, stall, "Lannion's link stops after 10 %: finish s")
    service_bars(axes[1][1], runs)
    axes[1][2].axis("off")
    fig.suptitle("fan-out at each region's pace (medians; Lannion in the stall run fails alone)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
