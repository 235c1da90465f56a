# %% [markdown]
# # The shared-expert scaling bug
#
# A fused routing kernel under review folded DeepSeek-V3's shared expert into the routing output and got
# its weight wrong (SPEC.md, "The invariant that the review bug broke"): it set the shared slot to
# `sum(routed) / r`, divided every weight by the routed sum, and switched the caller's `r` scaling off.
# The weights then add up to `1 + S / r`, and the shared expert counts `1 / r` instead of 1. No test of
# the weights alone looked wrong: each one was a plausible number. This notebook shows the bug in
# effective weights, in a layer's output, in its sibling (`r` applied twice), and how the property
# suite finds it by itself and shrinks it to one token.

# %%
import matplotlib.pyplot as plt
import torch

from moegate.properties.failures import format_failures
from moegate.properties.mutants import MUTANTS
from moegate.properties.suite import verify
from moegate.reference import get_preset, make_toy_moe, route

plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True})
cfg = get_preset("deepseek-v3")
E, K, r = cfg.num_experts, cfg.topk, cfg.routed_scaling_factor
gen = torch.Generator().manual_seed(0)
scores = torch.randn(4, E, generator=gen)
bias = 0.05 * torch.randn(E, generator=gen)
review_bug = MUTANTS["review_bug"].impl  # the review's renormalization, planted in properties/mutants.py
scaling_twice = MUTANTS["scaling_twice"].impl  # r multiplied on the output twice

# %% [markdown]
# ## Effective weights per slot: SPEC against the review
#
# What an expert contributes is its *effective* weight `c * w`: `c = r` when the caller multiplies the
# combined output by r (SPEC's default), `c = 1` when the kernel applies r itself or, as in the review,
# when the caller's scaling was switched off. SPEC requires the routed effective weights to sum to `r`
# and each shared slot to be exactly 1.

# %%
ids_ok, w_ok = route(scores, bias, cfg)  # SPEC: caller scales by r, so c = r
bug_cfg = cfg.replace(apply_routed_scaling_factor_on_output=True)  # the caller's scaling off: c = 1
ids_bug, w_bug = review_bug(scores, bias, bug_cfg)
c_ok, c_bug = cfg.effective_scale, bug_cfg.effective_scale
print(f"token 0, DeepSeek-V3 (r = {r}, one shared expert, id {E})")
print(f"{'slot':>4} {'expert':>6} | {'SPEC w':>8} {'c*w':>7} | {'review w':>8} {'c*w':>7}")
for s in range(K + 1):
    print(f"{s:>4} {int(ids_ok[0, s]):>6} | {w_ok[0, s]:8.4f} {c_ok * w_ok[0, s]:7.4f} | "
          f"{w_bug[0, s]:8.4f} {c_bug * w_bug[0, s]:7.4f}")
print(f"{'routed sum':>11} | {'':>8} {c_ok * w_ok[0, :K].sum():7.4f} | {'':>8} {c_bug * w_bug[0, :K].sum():7.4f}"
      f"   (SPEC: r = {r})")
assert ids_ok.equal(ids_bug)  # the same experts: only the weights are wrong

fig, ax = plt.subplots(figsize=(10, 4), constrained_layout=True)
x = torch.arange(K + 1)
ax.bar(x - 0.2, c_ok * w_ok[0], width=0.4, label=f"SPEC: c * w with c = r = {r}", color="tab:green")
ax.bar(x + 0.2, c_bug * w_bug[0], width=0.4, label="review: c * w with c = 1 (caller's r switched off)",
       color="tab:red")
ax.axhline(1.0, color="k", ls="--", lw=1, label="shared expert must count 1")
ax.set_xticks(x, [f"{int(e)}" for e in ids_ok[0, :K]] + [f"{E}\n(shared)"])
ax.set(title="Effective weight per slot, token 0: the review weights the shared expert 1/r = 0.4 "
       "and the routed ones 1/r too", xlabel="output slot: expert id", ylabel="effective weight c * w")
ax.legend()
plt.show()

# %% [markdown]
# ## What it does to a layer's output, as r varies
#
# `reference/toy_layer.py` builds a toy MoE layer from random expert matrices. The *unfused* layer
# computes `r * sum(w_i * E_i(x)) + shared(x)` directly; the *fused* one combines the routing output's
# slots and multiplies by `c`. SPEC says they are equal. Below, the relative error of the fused output
# for SPEC's weights, for the review's, and for `r` applied twice (`apply_routed_scaling_factor_on_output`
# with the kernel scaling once more), over r. At `r = 1` both bugs vanish: models whose scaling factor is
# 1 (GLM-4.5-Air, Qwen3) would never show them. The vertical lines are the presets' r.

# %%
def relative_error(impl, config, r_value, tokens=64, hidden=16):
    c = config.replace(routed_scaling_factor=float(r_value))
    g = torch.Generator().manual_seed(1)
    s = torch.randn(tokens, E, generator=g)
    bias_r = 0.05 * torch.randn(E, generator=g)
    x = torch.randn(tokens, hidden, dtype=torch.float64, generator=g)
    layer = make_toy_moe(c, hidden=hidden, seed=2)
    ids, w = impl(s, bias_r, c)
    reference = layer.unfused(x, s, bias_r)
    return float((layer.fused(x, ids, w) - reference).norm() / reference.norm())


rs = torch.logspace(-0.5, 1.3, 19).tolist() + [1.0]
rs.sort()
cases = {
    "SPEC (moegate.reference.route; float32 weights)": (route, cfg),
    "review: shared = sum/r, all / sum, caller's r off": (review_bug, bug_cfg),
    "r applied twice on the output": (scaling_twice, bug_cfg),
}
floor = 1e-17
fig, ax = plt.subplots(figsize=(9, 4.5), constrained_layout=True)
for label, (impl, config) in cases.items():
    errors = [max(relative_error(impl, config, rv), floor) for rv in rs]
    ax.plot(rs, errors, "o-", markersize=4, label=label)
for name, rv in (("deepseek-v3", 2.5), ("kimi-k2", 2.827), ("deepseek-v2", 16.0), ("glm-4.5-air", 1.0)):
    ax.axvline(rv, color="0.5", lw=0.8, ls=":")
    ax.annotate(name, (rv, 3e-16), rotation=90, fontsize=8, ha="right", va="bottom", color="0.3")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set(title="Toy MoE layer: |fused - unfused| / |unfused| against the routed scaling factor r",
       xlabel="routed_scaling_factor r", ylabel="relative output error (float64 layer)", ylim=(floor / 2, 1e3))
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2, fontsize=9)
plt.show()

# %% [markdown]
# ## The same class of bug: r applied twice to a fused shared slot
#
# With `apply_routed_scaling_factor_on_output`, step 8 multiplies every weight by r inside the kernel
# (`c = 1`). A kernel that does it and then lets another code path scale again returns `r^2 / r = r` on the
# shared slot instead of 1, and routed weights summing to `r^2`.

# %%
ids_2, w_2 = scaling_twice(scores, bias, bug_cfg)
ids_1, w_1 = route(scores, bias, bug_cfg)
print(f"shared slot, token 0: SPEC {float(w_1[0, K]):.4f}, r applied twice {float(w_2[0, K]):.4f} (r = {r})")
print(f"routed sum,  token 0: SPEC {float(w_1[0, :K].sum()):.4f}, r applied twice {float(w_2[0, :K].sum()):.4f}")

# %% [markdown]
# ## The property suite finds the bug by itself
#
# Nobody has to know the bug to catch it: `verify` draws routing problems with Hypothesis, judges each
# output with the oracle (SPEC alone, tie-aware), compares with the reference, checks metamorphic
# relations, and shrinks the first failure to a minimal counterexample. Run on the review's
# implementation with DeepSeek-V3's configuration as the review ran it (the caller's r scaling off, so
# the kernel must apply r), in float32 to keep it short. (With the caller scaling by r and renormalize on,
# the review's weights happen to equal SPEC's: the bug needs the configuration it was written for.)

# %%
report = verify(review_bug, configs=[bug_cfg], dtypes=["float32"], impl_name="review_bug")
failed = [res.name for res in report.results if not res.ok]
print(f"{report.examples} examples; failed: {', '.join(failed)}")
print("\n".join(format_failures(report.results, replay_hint=report.replay_hint)))

# %% [markdown]
# The oracle names the broken rules on a shrunk example of a single token: the weights are SPEC's
# divided by r, shared slot included. The suite also found a second root cause nobody was looking for:
# on a row whose logits are all NaN (p = 0 everywhere, SPEC's routed weights 0) the review divides by a
# routed sum of 0 and returns NaN weights, where SPEC's `+ 1e-20` keeps them 0. The first counterexample's
# effective weights, slot by slot:

# %%
oracle_result = report.results[0]
example = oracle_result.counterexample
diag = oracle_result.diagnosis
(ids_x, w_x), (ids_r, w_r) = diag.actual, diag.expected
fig, ax = plt.subplots(figsize=(10, 4), constrained_layout=True)
width = ids_x.shape[1]
x = torch.arange(width)
c_x = example.config.effective_scale
ax.bar(x - 0.2, w_r[0] * c_x, width=0.4, color="tab:green", label=f"reference (SPEC), c * w with c = {c_x:g}")
ax.bar(x + 0.2, w_x[0] * c_x, width=0.4, color="tab:red", label=f"review_bug, c * w with c = {c_x:g}")
ax.axhline(1.0, color="k", ls="--", lw=1, label="shared expert must count 1")
ax.set_xticks(x, [f"{int(e)}" for e in ids_x[0, :K]] + [f"{int(e)}\n(shared)" for e in ids_x[0, K:]])
ax.set(title=f"The shrunk counterexample ({example.num_rows} token, r = {example.config.routed_scaling_factor:g}): "
       "effective weights per slot",
       xlabel="output slot: expert id", ylabel="effective weight c * w")
ax.legend()
plt.show()
