"""The benchmark's figure: time per call against T, log-log, one line per implementation, one panel per
preset (and dtype when several), the floor drawn. Drawn from the JSON document `moegate bench --json`
prints (so a notebook can redraw a saved bench.json). matplotlib is an optional extra
(`pip install 'moegate[bench]'`): importing this module does not need it, drawing does.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

MARKERS = "osD^v<>ph*"


def floor_curve(
    points: list[tuple[int, int]], copy_tbps: float, launch_us: float, per_octave: int = 8
) -> tuple[list[float], list[float]]:
    """(T, floor µs) sampled between the (T, bytes) points, so that the kink where the bandwidth floor
    overtakes the launch floor is drawn where it is: bytes are affine in T, so interpolating them linearly
    between two points is exact."""
    ts: list[float] = []
    us: list[float] = []
    for (t0, b0), (t1, b1) in zip(points, [*points[1:], points[-1]], strict=True):
        steps = max(1, math.ceil(math.log2(t1 / t0) * per_octave)) if t1 > t0 else 1
        for i in range(steps):
            t = t0 * (t1 / t0) ** (i / steps) if t1 > t0 else t0
            nbytes = b0 + (b1 - b0) * (t - t0) / (t1 - t0) if t1 > t0 else b0
            ts.append(t)
            us.append(max(nbytes / (copy_tbps * 1e12) * 1e6, launch_us))
    return ts, us


def _panels(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p, d) for p in doc["presets"] for d in doc["dtypes"]]


def plot_bench(doc: dict[str, Any]) -> Any:
    """A matplotlib Figure of `doc` (BenchResult.to_json()): per (preset, dtype) panel, µs per call of
    every implementation's "ok" rows against T on log-log axes, and the floor of a SPEC-complete call
    (max(bytes / copy bandwidth, launch floor)) as a dashed line.

    Raises:
        ImportError: matplotlib is not installed.
        KeyError: `doc` lacks a field of the benchmark's JSON document.
    """
    from matplotlib.figure import Figure  # the object API: no pyplot state, no backend switch

    panels = _panels(doc)
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(5.2 * ncols, 4.2 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    impls = [i["name"] for i in doc["impls"] if i["available"]]
    peers = set(doc.get("peers", []))
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (preset, dtype) in zip(axes.flat, panels, strict=False):
        for n, impl in enumerate(impls):
            rows = [
                r
                for r in doc["rows"]
                if r["impl"] == impl and r["preset"] == preset and r["dtype"] == dtype and r["status"] == "ok"
            ]
            if not rows:
                continue
            rows.sort(key=lambda r: r["T"])
            ax.plot(
                [r["T"] for r in rows],
                [r["us"] for r in rows],
                color=f"C{n % 10}",  # one colour and marker per implementation in every panel
                marker=MARKERS[n % len(MARKERS)],
                linestyle="--" if impl in peers else "-",
                label=impl,
            )
        floor = sorted(
            (f["T"], f["bytes"]) for f in doc["floors"] if f["preset"] == preset and f["dtype"] == dtype
        )
        if floor:
            ts, us = floor_curve(floor, doc["copy_floor_tbps"], doc["launch_floor_us"])
            ax.plot(ts, us, color="black", linestyle=":", linewidth=2, label="floor")
        ax.set_xscale("log", base=2)
        ax.set_xticks(doc["T"], [str(t) for t in doc["T"]], rotation=30)
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_xlabel("T (rows per call)")
        ax.set_ylabel("time per call (µs)")
        ax.set_title(f"{preset}, {dtype}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    method = "CUDA-graph replays, inputs rotated past L2" if doc["device"].startswith("cuda") else "CPU"
    fig.suptitle(
        f"route() time per call on {doc['card']} ({method}); floor = max(bytes / "
        f"{doc['copy_floor_tbps']:.3g} TB/s copy, {doc['launch_floor_us']:.3g} µs launch)",
        fontsize="medium",
    )
    return fig


def write_plot(doc: dict[str, Any], path: str | Path) -> Path:
    """Draw `doc` (plot_bench) and save it as a PNG at `path`; returns the path.

    Raises:
        ImportError: matplotlib is not installed.
    """
    fig = plot_bench(doc)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
