"""The documentation's plot: p99 lateness against the number of jobs (case 1), from a
results file of ``python -m benchmarks``.

``python -m benchmarks --plot docs/benchmark-lateness.svg`` measures, then plots;
``python -m benchmarks --from docs/benchmark-current.json --plot docs/benchmark-lateness.svg``
plots a results file again without measuring. matplotlib (in the ``bench`` extra) is
imported only here.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

#: the schedulers of case 1, in the legend's order, with their labels and styles
SERIES = {
    "mashroom": ("mashroom-jobs", "o", "-"),
    "apscheduler": ("APScheduler 3.11", "s", "-"),
    "floor": ("floor: one thread calling the callbacks inline", "^", ":"),
}


def lateness_series(document: dict[str, Any]) -> dict[str, list[tuple[int, float, float]]]:
    """Per scheduler, ``(N, p99 ms, missed fires)`` for each N of case 1 (medians of the
    rounds), from the ``runs`` of a results file; cases 2 and 7 (busy main thread, store)
    are left out."""
    found: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for entry in document["runs"]:
        params, result = entry["params"], entry["result"]
        if (entry["case"] != "lateness" or params.get("busy")
                or entry["scheduler"] not in SERIES or "error" in result):
            continue
        found.setdefault((entry["scheduler"], params["n"]), []).append(result)
    series: dict[str, list[tuple[int, float, float]]] = {}
    for (scheduler, n), results in sorted(found.items()):
        series.setdefault(scheduler, []).append((
            n,
            statistics.median(r["p99_ms"] for r in results),
            statistics.median(r["missed"] for r in results),
        ))
    return series


def write_lateness_plot(document: dict[str, Any], path: Path) -> None:
    """Write the plot of case 1 to ``path`` (its suffix picks the format: .svg, .png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = lateness_series(document)
    if not series:
        raise ValueError("the results hold no run of case 1 (lateness): run it (--only 1)")
    plt.rcParams["svg.hashsalt"] = "mashroom-jobs"  # the same figures give the same file
    figure, axes = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for scheduler, (label, marker, style) in SERIES.items():
        points = series.get(scheduler)
        if not points:
            continue
        ns = [n for n, _, _ in points]
        p99 = [max(ms, 0.01) for _, ms, _ in points]  # a log axis has no 0
        axes.plot(ns, p99, marker=marker, linestyle=style, label=label)
        for n, ms, missed in points:
            if missed:
                axes.annotate(f"{label}: {missed:,.0f} fires missed", (n, max(ms, 0.01)),
                              textcoords="offset points", xytext=(-10, -4), ha="right",
                              va="top", fontsize=8)
    axes.set_xscale("log")
    ns = sorted({n for points in series.values() for n, _, _ in points})
    axes.set_xticks(ns, [f"{n:,}" for n in ns])
    axes.minorticks_off()
    axes.set_yscale("log")
    axes.set_xlabel("every-second jobs (N)")
    axes.set_ylabel("p99 lateness of the callback's start, ms")
    meta = document.get("meta", {})
    machine = meta.get("machine", {})
    axes.set_title(f"Fire lateness, {machine.get('cores', '?')} cores, "
                   f"Python {machine.get('python', '?')}, {meta.get('started', '')}",
                   fontsize=10)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(figure)
