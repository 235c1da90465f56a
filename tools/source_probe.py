"""Time the dispatch's kernels compiled from several versions of route.cu side by side on a CUDA GPU.

    python tools/source_probe.py --variant head=old_route.cu --variant new=optimized/kernels/route.cu \
        [--preset deepseek-v3 ...] [--rows 1,256,4096,262144] [--rounds 3] [--no-bias] [--stamps]

Each variant is a route.cu text; the probe compiles it (only the kernels the chosen presets dispatch to,
every dtype's name list kept out), times each preset and T through `route.launch` with the dispatch's
plan and `moegate bench`'s timer (CUDA graph over input sets rotated past L2, median of 5 replays), in
`--rounds` alternating passes over the variants so that a drift of the card's clocks shows, and checks
that every variant's ids and weights are bitwise the first variant's on random and tie-heavy rows. Each
time is printed as it is measured (indented), and the table at the end.
A preset with a bias gets a float32 one (0.1 N(0, 1)); --no-bias routes every preset without one.

--stamps: also inserts clock64 stamps between the steps of the latency plan's warp kernel (lane 0 of
block 0 writes them; each stamp takes the step's result as an input, so it is read after that result
exists) and prints, per variant and preset, the median cycles of each step of a T = 1 call whose logits
come from HBM (a 256 MB buffer is overwritten between calls). A variant whose text lacks an anchor is
reported and skipped for stamps.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import torch

from moegate.optimized import build, dispatch_plan
from moegate.optimized.route import launch
from moegate.properties.benchmark_timers import CudaTimer
from moegate.reference import get_preset, preset_has_bias

STAMP_HEADER = """
__device__ unsigned long long moegate_stamps[16];
template <typename T>
__device__ __forceinline__ unsigned stamp_bits(T v) { return static_cast<unsigned>(v); }
template <>
__device__ __forceinline__ unsigned stamp_bits<float>(float v) { return __float_as_uint(v); }
template <typename T>
__device__ __forceinline__ void moegate_stamp(int n, T after) {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%clock64;" : "=l"(t) : "r"(stamp_bits(after)));
  if (threadIdx.x == 0 && blockIdx.x == 0) moegate_stamps[n] = t;
}
"""

# (anchor inside route_warp_kernel, text inserted before it): the steps of one row.
STAMPS = (
    ("  // The bias in registers, once per warp", "  moegate_stamp(0, 0u);\n"),
    (
        "    if constexpr (SCORING == kSigmoid) {\n      sigmoid_in_place<C, true>(p);",
        "    moegate_stamp(1, p[0]);\n",
    ),
    ("    // ---- step 2: biased_scores ----", "    moegate_stamp(2, p[C - 1]);\n"),
    ("    // ---- step 5: expert_selection; lane k ends", "    moegate_stamp(3, key[0]);\n"),
    ("    const u32 floor_key = max(tau, 1u);", "    moegate_stamp(4, tau);\n"),
    ("    if (staged <= kWarpSize) {", "    moegate_stamp(5, staged);\n"),
    ("      if (rank_select) {\n        // Each candidate", "      moegate_stamp(6, cand_key);\n"),
    (
        "    // ---- steps 6-8: routed_weights, shared_slots, output_scaling ----\n    if (!summed)",
        "    moegate_stamp(7, slot_p);\n",
    ),
)
STAMP_NAMES = ("load", "sigmoid", "keys+groups", "tau", "staging offsets", "staging", "slots", "sum+write")


def with_stamps(text: str) -> str | None:
    """`text` with the stamps inserted in route_warp_kernel (None when an anchor is missing)."""
    start = text.index("route_warp_kernel(")
    end = text.index("Row-per-segment kernel")
    body = text[start:end]
    for anchor, stamp in STAMPS:
        if body.count(anchor) != 1:
            return None
        body = body.replace(anchor, stamp + anchor)
    end_anchor = "                         routed_sum, lane, out);\n  }\n}"
    if body.count(end_anchor) != 1:
        return None
    body = body.replace(
        end_anchor, end_anchor[: -len("  }\n}")] + "    moegate_stamp(8, routed_sum);\n  }\n}"
    )
    namespace = text.index("namespace moegate {")
    return text[:namespace] + STAMP_HEADER + text[namespace:start] + body + text[end:]


def use_source(text: str, names: list[str]) -> None:
    """Make `build` compile `text` with only `names`, dropping whatever it compiled before."""
    build.kernel_source = lambda: text
    build.name_expressions = lambda: names
    build._binaries.clear()
    build._modules.clear()
    build._kernels.clear()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", action="append", required=True, help="NAME=PATH of a route.cu")
    parser.add_argument("--preset", action="append", default=None)
    parser.add_argument("--rows", default="1,256,4096,262144")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--no-bias", action="store_true", help="route every preset without a bias")
    parser.add_argument("--stamps", action="store_true")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    variants = [(v.split("=", 1)[0], open(v.split("=", 1)[1]).read()) for v in args.variant]
    presets = args.preset or ["deepseek-v3"]
    rows = [int(r) for r in args.rows.split(",")]
    device = torch.device("cuda")
    timer = CudaTimer(device)
    dispatched = {p: dispatch_plan(get_preset(p), dtype) for p in presets}

    def plans_for(text: str) -> dict:
        """The dispatch's plans, without the bound plan for a route.cu that has none (before session 12), nor
        for a softmax row in a route.cu without the lazy named keys' bound plan (before session 21)."""
        plans = {}
        for p, plan in dispatched.items():
            lazy_row = get_preset(p).scoring_func == "softmax"
            if "kPlanBound" not in text or (lazy_row and "lazy_named_plan_applies" not in text):
                plan = dataclasses.replace(plan, bound_name_expression=None)
            plans[p] = plan
        return plans

    def names_for(plans: dict) -> list[str]:
        kernels = (
            n
            for plan in plans.values()
            for n in (plan.name_expression, plan.latency_name_expression, plan.bound_name_expression)
        )
        return sorted({n for n in kernels if n})

    kernels = names_for(dispatched)
    print(torch.cuda.get_device_name(0), "torch", torch.__version__, "kernels", kernels, flush=True)
    torch.manual_seed(0)
    inputs = {}
    for p in presets:
        E = get_preset(p).num_experts
        with_bias = preset_has_bias(p) and not args.no_bias
        bias = torch.randn(E, device=device) * 0.1 if with_bias else None
        tie_bias = None if bias is None else torch.randint(-1, 2, (E,), device=device) * 0.25
        for t in rows:
            inputs[p, t] = (
                [
                    (torch.randn(t, E, device=device).to(dtype), bias),
                    ((torch.randint(-2, 3, (t, E), device=device) * 0.5).to(dtype), tie_bias),
                ],
                bias,
            )
    times: dict[tuple[str, str, int], list[float]] = {}
    first_out: dict[tuple[str, int], list] = {}
    for _ in range(args.rounds):
        for vname, text in variants:
            plans = plans_for(text)
            use_source(text, names_for(plans))
            for p in presets:
                config, plan = get_preset(p), plans[p]
                W, E = config.output_width, config.num_experts
                for t in rows:
                    checks, bias = inputs[p, t]

                    def outputs(n: int = t, w: int = W):
                        return torch.empty(n, w, dtype=torch.int32, device=device), torch.empty(
                            n, w, device=device
                        )

                    def make_set(index: int, n: int = t, e: int = E, b=bias):
                        del index
                        return torch.randn(n, e, device=device).to(dtype), b

                    def call(scores, b, plan=plan, config=config, outputs=outputs) -> None:
                        launch(plan, scores, b, config, *outputs())

                    us = timer.time(call, make_set, t * E * dtype.itemsize).seconds * 1e6
                    times.setdefault((vname, p, t), []).append(us)
                    print(f"  {vname} {p} T={t}: {us:.2f} us", flush=True)  # a run cut short keeps these
                    got = []
                    for scores, b in checks:
                        o = outputs()
                        o[0].fill_(-7)
                        o[1].fill_(float("nan"))
                        launch(plan, scores, b, config, *o)
                        got.append(o)
                    ref = first_out.setdefault((p, t), got)
                    same = all(
                        torch.equal(a, c)
                        for x, y in zip(got, ref, strict=True)
                        for a, c in zip(x, y, strict=True)
                    )
                    if not same:
                        print(f"{vname} {p} T={t}: DIFFERS from {variants[0][0]}", flush=True)
    for p in presets:
        for t in rows:
            cells = []
            base = statistics.median(times[variants[0][0], p, t])
            for vname, _ in variants:
                ts = times[vname, p, t]
                cells.append(
                    f"{vname} {statistics.median(ts):7.2f} ({statistics.median(ts) / base:.3f}x; "
                    + "/".join(f"{x:.2f}" for x in ts)
                    + ")"
                )
            print(f"{p:18s} T={t:>7d}  " + "  ".join(cells), flush=True)
    if not args.stamps:
        return
    import cupy

    scratch = torch.empty(64 * 1024 * 1024, device=device)
    for vname, text in variants:
        stamped = with_stamps(text)
        if stamped is None:
            print(f"stamps: {vname} lacks an anchor, skipped")
            continue
        plans = plans_for(stamped)
        use_source(stamped, names_for(plans))
        for p in presets:
            config, plan = get_preset(p), plans[p]
            module, _ = build.load_module()
            stamps = module.get_global_var("moegate_stamps")
            host = torch.zeros(16, dtype=torch.int64)
            deltas = []
            _, bias = inputs[p, rows[0]]
            for _ in range(200):
                scores = torch.randn(1, config.num_experts, device=device).to(dtype)
                scratch.fill_(1.0)
                ids, weights = (
                    torch.empty(1, config.output_width, dtype=torch.int32, device=device),
                    torch.empty(1, config.output_width, device=device),
                )
                launch(plan, scores, bias, config, ids, weights)
                torch.cuda.synchronize()
                cupy.cuda.runtime.memcpy(host.data_ptr(), int(stamps), 16 * 8, 2)
                deltas.append([int(host[i + 1] - host[i]) for i in range(len(STAMP_NAMES))])
            med = [statistics.median(d[i] for d in deltas) for i in range(len(STAMP_NAMES))]
            print(
                f"stamps {vname} {p} T=1 cycles: "
                + ", ".join(f"{n} {m:.0f}" for n, m in zip(STAMP_NAMES, med, strict=True))
                + f"; total {sum(med):.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
