# %% [markdown]
# # Precision and ties: why the oracle accepts either side of a near-tie
#
# Two correct float32 implementations can disagree on *which* expert a token gets: when two candidates'
# biased scores `b` differ by a few ulp, the order of a sum or an `expf` that is 1 ulp off flips the
# choice. This notebook measures how often that happens per score dtype, how large the weight errors of
# correct implementations are (the reference on this CPU, and the fused kernel as recorded on an H200), and
# shows why an oracle that compared ids exactly would reject correct kernels.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from moegate.properties import fixtures as fx
from moegate.properties import oracle, tolerances
from moegate.properties.impls import gpu_unavailable_reason
from moegate.properties.problem import RoutingProblem
from moegate.reference import get_preset, route

plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True})
REPO = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "tests" / "fixtures" / "manifest.json").is_file())
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
PRESETS = ["deepseek-v3", "kimi-k2", "qwen3-moe"]
ROWS = 768

# %% [markdown]
# ## How often is a row a tie?
#
# `oracle.tie_rows` flags a row whose selection involves a *near-tie*: two candidates at the kept/dropped
# boundary (or two routed slots) whose `b` lie within the tie tolerance (`1e-6 + 1e-5 * |b|`) without
# having identical inputs. *Exact* ties (two experts with the same logit and bias, hence bitwise equal `b`
# in any implementation) are different: the lower-index rule decides them, and every implementation
# must follow it. Low-precision logits make exact ties common: bfloat16 keeps 8 bits of mantissa, so
# among 128 to 384 logits of one token some collide.

# %%
near = {}
exact = {}
for preset in PRESETS:
    for dtype in DTYPES:
        prob = fx.preset_problem(preset, dtype, ROWS, seed=5)
        flagged = oracle.tie_rows(prob)
        with_exact = oracle.tie_rows(prob, exact=True)
        near[preset, dtype] = 100 * float(flagged.float().mean())
        exact[preset, dtype] = 100 * float((with_exact & ~flagged).float().mean())

fig, ax = plt.subplots(figsize=(10, 4.2), constrained_layout=True)
width = 0.27
colors = {torch.float32: "tab:blue", torch.float16: "tab:orange", torch.bfloat16: "tab:red"}
for j, dtype in enumerate(DTYPES):
    xs = [i + (j - 1) * width for i in range(len(PRESETS))]
    name = str(dtype).replace("torch.", "")
    ax.bar(xs, [near[p, dtype] for p in PRESETS], width, color=colors[dtype], label=f"{name}: near-tie rows")
    ax.bar(xs, [exact[p, dtype] for p in PRESETS], width, bottom=[near[p, dtype] for p in PRESETS],
           color=colors[dtype], alpha=0.35, hatch="//", label=f"{name}: exact-tie rows (lower index decides)")
ax.set_xticks(range(len(PRESETS)), PRESETS)
ax.set(title=f"Rows whose selection involves a tie, per score dtype ({ROWS} random tokens per bar)",
       xlabel="preset", ylabel="rows with a tie (%)")
ax.legend(fontsize=8, ncols=2, loc="upper left")
ax.set_ylim(0, max(near[k] + exact[k] for k in near) * 1.45 + 0.5)
plt.show()
for dtype in DTYPES:
    print(f"{str(dtype):15s}", "  ".join(f"{p}: near {near[p, dtype]:.2f}%, exact {exact[p, dtype]:.2f}%"
                                          for p in PRESETS))

# %% [markdown]
# ## The selection margin: how close the K-th and the (K+1)-th candidate are
#
# The continuous picture behind those counts: for each token, the gap in `b` between the last routed
# expert and the best expert left out (among the kept groups). Where the gap is below the tie tolerance,
# float32 rounding may order the two either way. A gap of exactly 0 is an exact tie (drawn at the left
# edge). bfloat16 logits put many rows at exactly 0 for the softmax presets.

# %%
fig, axes = plt.subplots(1, len(PRESETS), figsize=(13, 3.8), constrained_layout=True, sharey=True)
edges = torch.logspace(-10, 0, 41)
for ax, preset in zip(axes, PRESETS, strict=True):
    for dtype in DTYPES:
        prob = fx.preset_problem(preset, dtype, ROWS, seed=5)
        sc = oracle.read_scores(prob)
        kept, routed = oracle.canonical_selection(prob, sc)
        c = prob.config
        n = c.experts_per_group
        in_kept = torch.zeros(ROWS, c.num_expert_group, dtype=torch.bool).scatter(1, kept, True)
        candidates = in_kept[:, torch.arange(c.num_experts) // n].clone()
        candidates.scatter_(1, routed, False)
        best_out = torch.where(candidates, sc.b, torch.full_like(sc.b, -float("inf"))).amax(-1)
        gap = (torch.gather(sc.b, 1, routed[:, -1:]).squeeze(1) - best_out).clamp(min=0)
        ax.hist(gap.clamp(min=1.1e-10).numpy(), bins=edges.numpy(), histtype="step", lw=1.5,
                color=colors[dtype], label=str(dtype).replace("torch.", ""))
    tol = float(tolerances.tie_width(torch.tensor(0.5), torch.tensor(0.5)))
    ax.axvline(tol, color="k", ls="--", lw=1, label=f"tie tolerance at b = 0.5 ({tol:.1e})")
    ax.set_xscale("log")
    ax.set(title=preset, xlabel="b(K-th routed) - b(best left out)")
axes[0].set_ylabel(f"tokens (of {ROWS})")
axes[0].legend(fontsize=8, loc="upper left")
fig.suptitle("Selection margin per token (float64 recomputation; exact ties at the left edge, 1e-10)")
plt.show()

# %% [markdown]
# ## Weight errors of correct implementations
#
# SPEC does all arithmetic in float32 after converting the inputs exactly, so a correct implementation's
# weights are within a few float32 ulp of the exact value, whatever the input dtype. Below: each routed
# weight's relative error against a float64 recomputation of SPEC for the same experts, for the reference
# on this CPU and for the fused kernel (`moegate.optimized`). On a machine with a GPU the kernel runs live;
# without one, its outputs come from `tests/kernel_fixtures/h200` (recorded on an H200). The dashed line
# is the oracle's weight tolerance (relative part).

# %%
def exact_weights(prob, ids):
    """SPEC's weights for the experts `ids` [T, W], in float64 (oracle.read_scores)."""
    c = prob.config
    sc = oracle.read_scores(prob)
    w = torch.gather(sc.p, 1, ids[:, : c.topk].long())
    if c.renormalize:
        w = w / (w.sum(-1, keepdim=True) + 1e-20)
    return w * (c.routed_scaling_factor if c.apply_routed_scaling_factor_on_output else 1.0)


def relative_errors(prob, ids, weights):
    exact_w = exact_weights(prob, ids)
    w = weights[:, : prob.config.topk].double()
    keep = exact_w > 1e-6  # weights near 0 are judged by the absolute tolerance instead
    return ((w - exact_w).abs() / exact_w)[keep]


kernel_source = "tests/kernel_fixtures/h200 (recorded on an NVIDIA H200)"
errors = {"reference (CPU)": {}, "fused kernel": {}}
if gpu_unavailable_reason() is None:
    from moegate.optimized import route as kernel_route

    kernel_source = f"moegate.optimized live on {torch.cuda.get_device_name()}"
    for dtype in DTYPES:
        prob = fx.preset_problem("deepseek-v3", dtype, 4096, seed=9)
        ids, w = kernel_route(prob.scores.cuda(), prob.bias.cuda(), prob.config)
        errors["fused kernel"][dtype] = relative_errors(prob, ids.cpu(), w.cpu())
else:
    print(f"no GPU here ({gpu_unavailable_reason()}): the kernel's outputs come from {kernel_source}")
    cases = fx.load_fixture_set(REPO / "tests" / "kernel_fixtures" / "h200")
    for dtype in DTYPES:
        found = [relative_errors(c.problem, c.ids, c.weights) for c in cases
                 if c.problem.dtype == dtype and c.problem.num_rows and not c.name.startswith("edge-nonfinite")]
        errors["fused kernel"][dtype] = torch.cat(found)
for dtype in DTYPES:
    found = []
    for preset in PRESETS:
        prob = fx.preset_problem(preset, dtype, 1024, seed=9)
        ids, w = route(prob.scores, prob.bias, prob.config)
        found.append(relative_errors(prob, ids, w))
    errors["reference (CPU)"][dtype] = torch.cat(found)

rtol, _ = tolerances.weight_tolerance(torch.float32)
fig, axes = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True, sharey=True)
edges = torch.logspace(-11, -4, 36)
for ax, (impl, by_dtype) in zip(axes, errors.items(), strict=True):
    for dtype, e in by_dtype.items():
        zero = float((e == 0).float().mean()) * 100
        ax.hist(e.clamp(min=1.1e-11).numpy(), bins=edges.numpy(), histtype="step", lw=1.5, color=colors[dtype],
                label=f"{str(dtype).replace('torch.', '')} ({len(e)} weights, {zero:.0f}% exact)")
    ax.axvline(rtol, color="k", ls="--", lw=1, label=f"weight tolerance rtol = {rtol:g}")
    ax.axvline(2.0 ** -24, color="0.5", ls=":", lw=1, label="half a float32 ulp (6e-8)")
    ax.set_xscale("log")
    title = impl if impl.startswith("reference") else f"fused kernel: {kernel_source}"
    ax.set(title=title, xlabel="|w - w_exact| / w_exact (exact: float64 SPEC; 0 at the left edge)")
    ax.legend(fontsize=8, loc="upper right")
axes[0].set_ylabel("routed weights")
fig.suptitle("Relative weight error of correct implementations, per score dtype")
plt.show()
for impl, by_dtype in errors.items():
    print(impl, {str(d).replace("torch.", ""): f"max {float(e.max()):.1e}" for d, e in by_dtype.items()})

# %% [markdown]
# ## Why the oracle must be tie-aware
#
# Random tokens rarely land on a near-tie, so build some: in each of 2,000 DeepSeek-V3 tokens, set the
# best expert left out to a logit one float32 ulp above the last routed expert's. In exact arithmetic
# (float64) the left-out expert now wins; in float32 the two sigmoids often round to the same value and
# the lower index wins instead. Both are correct readings of SPEC: the difference is below any honest
# tolerance. A checker that compared ids exactly with a float64 answer would reject the reference itself
# on those tokens (and a GPU kernel differently on every GPU); the tie-aware oracle accepts them and still
# rejects genuine errors, which the property suite relies on.

# %%
cfg = get_preset("deepseek-v3")
gen = torch.Generator().manual_seed(4)
x = torch.randn(2000, cfg.num_experts, generator=gen)
no_bias = torch.zeros(cfg.num_experts)  # identical bias entries: every tie below is a tie of the logits
base = RoutingProblem(cfg, x, no_bias)
sc = oracle.read_scores(base)
kept, routed = oracle.canonical_selection(base, sc)
n = cfg.experts_per_group
in_kept = torch.zeros(len(x), cfg.num_expert_group, dtype=torch.bool).scatter(1, kept, True)
left_out = in_kept[:, torch.arange(cfg.num_experts) // n].clone().scatter_(1, routed, False)
f = torch.where(left_out, sc.b, torch.full_like(sc.b, -float("inf"))).argmax(-1)
e = routed[:, -1]
rows = torch.arange(len(x))
x[rows, f] = torch.nextafter(x[rows, e], torch.tensor(float("inf")))  # one ulp above the last routed
tied = RoutingProblem(cfg, x, no_bias)
ids, w = route(tied.scores, tied.bias, cfg)
_, exact_choice = oracle.canonical_selection(tied)
differs = (ids[:, : cfg.topk].long().sort(-1).values != exact_choice.sort(-1).values).any(-1)
flagged = oracle.tie_rows(tied)
rejected = {v.row for v in oracle.check_routing(tied, ids, w)}
exact_checker = int(differs.sum())
tie_aware = len(rejected)
print(f"tokens whose float32 choice differs from float64's: {exact_checker} of {len(x)}; "
      f"flagged as near-ties: {int((differs & flagged).sum())}; rejected by the oracle: {tie_aware}")

fig, ax = plt.subplots(figsize=(7, 3.2), constrained_layout=True)
bars = ax.barh(["exact ids vs float64", "tie-aware oracle (SPEC)"], [exact_checker, tie_aware],
               color=["tab:red", "tab:green"])
ax.bar_label(bars, [f"{exact_checker} tokens rejected", f"{tie_aware} tokens rejected"], padding=4)
ax.set(title="The reference (correct) judged on 2,000 constructed near-tie tokens",
       xlabel="tokens rejected", xlim=(0, max(exact_checker, 1) * 1.5))
plt.show()
