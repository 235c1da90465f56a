# %% [markdown]
# # Speed: time against batch size, and the floors under it
#
# A routing kernel reads `T * E` logits and writes `T * W` ids and weights; nothing can do it faster than
# the GPU's copy bandwidth allows, nor faster than one kernel launch. The benchmark (run on an H200 and
# stored as JSON in `docs/bench/bench_h200.json`) times each implementation at several batch sizes T per
# preset and dtype, and records the two floors measured on the same card. This notebook draws the curves
# from that file and says how far above the floor each kernel runs at each T. It measures nothing itself, so
# it runs on any machine; the file comes from a GPU run.

# %%
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt

plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True})
REPO = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "tests" / "fixtures" / "manifest.json").is_file())
BENCH = Path(os.environ.get("MOEGATE_BENCH_JSON", REPO / "docs" / "bench" / "bench_h200.json"))
bench = json.loads(BENCH.read_text()) if BENCH.is_file() else None
if bench is None:
    print(f"No benchmark results yet ({BENCH} does not exist): the figures below are skipped. The file is "
          "written by the benchmark on a GPU.")
else:
    print(f"{bench['card']}, driver {bench['driver']}, {bench.get('versions', {})}")
    print(f"copy floor {bench['copy_floor_tbps']} TB/s, launch floor {bench['launch_floor_us']} us, "
          f"{len(bench['rows'])} measurements")


def floor_us(nbytes):
    """The time no kernel can beat: one launch, or moving its bytes at the copy bandwidth."""
    return max(bench["launch_floor_us"], nbytes / (bench["copy_floor_tbps"] * 1e12) * 1e6)


# %% [markdown]
# ## Time against T, per preset and dtype
#
# One panel per preset and score dtype; one line per implementation (only its `ok` measurements). The
# black line is the floor: the launch floor at small T, the copy bandwidth at large T. A circle marks where
# each implementation comes closest to the floor, and the table under the figure gives its time over the
# floor at every T. The launch floor (an empty kernel in a CUDA graph) is a fraction of any real kernel's
# fixed cost, so no kernel is near it at small T. The ratio is usually highest in between, where the floor
# has barely left one launch while the kernel already pays for its rows; whether a kernel comes closest at
# the smallest or the largest T says whether its fixed cost or its cost per row is the larger gap.

# %%
closest = {}
if bench is not None:
    ok = [r for r in bench["rows"] if r["status"] == "ok"]
    panels = sorted({(r["preset"], r["dtype"]) for r in ok})
    impls = sorted({r["impl"] for r in ok})
    colors = dict(zip(impls, plt.cm.tab10.colors, strict=False))
    cols = min(3, len(panels))
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 4 * nrows), constrained_layout=True, squeeze=False)
    for ax, (preset, dtype) in zip(axes.flat, panels, strict=False):
        here = [r for r in ok if (r["preset"], r["dtype"]) == (preset, dtype)]
        sizes = sorted({(r["T"], r["bytes"]) for r in here})
        ax.plot([t for t, _ in sizes], [floor_us(b) for _, b in sizes], "k-", lw=2, label="floor")
        for impl in impls:
            pts = sorted((r["T"], r["us"], r["bytes"]) for r in here if r["impl"] == impl)
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, color=colors[impl], label=impl)
            over = {p[0]: p[1] / floor_us(p[2]) for p in pts}
            best = min(pts, key=lambda p: over[p[0]])
            closest[impl, preset, dtype] = best[0], over
            ax.plot([best[0]], [best[1]], "o", ms=10, mfc="none", color=colors[impl])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set(title=f"{preset}, {dtype} scores", xlabel="tokens T", ylabel="time per call (us)")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"Routing time on {bench['card']} (circle: where each comes closest to the floor)")
    plt.show()
    sizes = sorted({r["T"] for r in ok})
    print("time over the floor (x) at each T; '-' where not measured")
    print(f"{'':>20s}  {'preset, dtype':<32s}" + "".join(f"{t:>9d}" for t in sizes))
    for (impl, preset, dtype), (_, over) in sorted(closest.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        cells = "".join(f"{over[t]:>9.2f}" if t in over else f"{'-':>9s}" for t in sizes)
        print(f"{impl:>20s}  {preset + ', ' + dtype:<32s}{cells}")
    print()
    for (impl, preset, dtype), (t, over) in sorted(closest.items()):
        print(f"{impl:>20s}  {preset}, {dtype}: closest to the floor at T = {t} ({over[t]:.2f}x)")
else:
    print("skipped: no benchmark results")

# %% [markdown]
# ## Bandwidth reached
#
# The same measurements as bytes moved per second, against the copy floor: how much of the card's
# bandwidth each implementation turns into routing at large T, on the presets a peer routes too.

# %%
if bench is not None:
    # One panel per preset a peer routes too (where the comparison means something), one line per impl.
    shown = [pd for pd in panels if any(r["impl"] in bench.get("peers", []) for r in ok if (r["preset"], r["dtype"]) == pd)]
    shown = shown or panels[:3]
    cols = min(3, len(shown))
    fig, axes = plt.subplots((len(shown) + cols - 1) // cols, cols, figsize=(4.8 * cols, 3.8 * ((len(shown) + cols - 1) // cols)),
                             constrained_layout=True, squeeze=False, sharey=True)
    for ax, (preset, dtype) in zip(axes.flat, shown, strict=False):
        for impl in impls:
            pts = sorted((r["T"], r["bytes"] / (r["us"] * 1e-6) / 1e12) for r in ok
                         if r["impl"] == impl and (r["preset"], r["dtype"]) == (preset, dtype))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, color=colors[impl], label=impl)
        ax.axhline(bench["copy_floor_tbps"], color="k", ls="--", label=f"copy floor {bench['copy_floor_tbps']:.2f} TB/s")
        ax.set_xscale("log")
        ax.set(title=f"{preset}, {dtype}", xlabel="tokens T", ylim=(0, 1.1 * bench["copy_floor_tbps"]))
    for ax in axes[:, 0]:
        ax.set_ylabel("bytes moved / time (TB/s)")
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    handles = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), fontsize=8, loc="outside right center")
    fig.suptitle(f"Bandwidth reached on {bench['card']}: how much of the copy floor each turns into routing")
    plt.show()
    other = {}
    for r in bench["rows"]:
        if r["status"] != "ok":
            other.setdefault((r["impl"], r["status"], r["preset"], r["dtype"]), []).append(r["T"])
    for (impl, status, preset, dtype), ts in sorted(other.items()):
        print(f"{impl} {status} {preset} {dtype} at T = {', '.join(map(str, sorted(ts)))}")
else:
    print("skipped: no benchmark results")
