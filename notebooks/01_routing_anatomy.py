# %% [markdown]
# # Routing anatomy: one token through SPEC's eight steps, then a batch
#
# `moegate.reference` writes the routing contract (`docs/SPEC.md`) as one small function per step. This
# notebook routes one DeepSeek-V3 token through them and draws each intermediate tensor, then routes a
# batch to show how the load spreads over the experts for the real models' presets, and what the
# correction bias (`e_score_correction_bias`) is for: balancing that load without touching the weights.
# Everything runs on the CPU in a few seconds.

# %%
import matplotlib.pyplot as plt
import torch

from moegate.properties import fixtures as fx
from moegate.reference import (
    biased_scores,
    expert_selection,
    get_preset,
    group_scores,
    group_selection,
    make_toy_moe,
    output_scaling,
    probabilities,
    route,
    routed_weights,
    shared_slots,
)

plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True})
cfg = get_preset("deepseek-v3")
E, G, K, Kg, r = cfg.num_experts, cfg.num_expert_group, cfg.topk, cfg.topk_group, cfg.routed_scaling_factor
n = E // G  # experts per group
gen = torch.Generator().manual_seed(3)
scores = torch.randn(1, E, generator=gen).to(torch.bfloat16)  # router logits [T=1, E], as a model sends them
bias = 0.05 * torch.randn(E, generator=gen)  # e_score_correction_bias [E], float32
print(cfg)

# %% [markdown]
# ## Steps 1 to 4: probabilities, biased scores, group scores, kept groups
#
# Step 1 turns each logit into `p = sigmoid(x)`; step 2 adds the bias, `b = p + bias`, used *only to
# choose* experts. Step 3 scores each group of 32 experts by the sum of its two largest `b`, and step 4
# keeps the 4 best of the 8 groups. Experts of dropped groups can no longer be chosen, however large
# their own `b`.

# %%
p = probabilities(scores, cfg.scoring_func)  # step 1  [1, E] float32
b = biased_scores(p, bias)  # step 2
gs = group_scores(b, G, has_bias=True)  # step 3  [1, G]
kept = group_selection(gs, Kg)  # step 4  [1, Kg]
kept_set = set(kept[0].tolist())

fig, axes = plt.subplots(3, 1, figsize=(11, 8.5), constrained_layout=True)
xs = torch.arange(E)
group_colors = ["tab:blue" if (e // n) % 2 == 0 else "tab:cyan" for e in range(E)]
axes[0].bar(xs, scores[0].float(), color=group_colors, width=1.0)
axes[0].set(title="Step 0: router logits x of one token (colour alternates by group of 32)",
            xlabel="expert id", ylabel="logit x", xlim=(-1, E))
axes[1].bar(xs, p[0], color="0.7", width=1.0, label="p = sigmoid(x)  (step 1)")
axes[1].plot(xs, b[0], ".", color="tab:orange", markersize=3, label="b = p + bias  (step 2)")
for g in range(1, G):
    axes[1].axvline(g * n - 0.5, color="0.5", lw=0.5)
axes[1].set(title="Steps 1-2: probabilities and biased scores", xlabel="expert id", ylabel="score",
            xlim=(-1, E), ylim=(0, 1.15))
axes[1].legend(loc="upper right", ncols=2)
colors = ["tab:green" if g in kept_set else "0.75" for g in range(G)]
bars = axes[2].bar(range(G), gs[0], color=colors)
for g, bar in enumerate(bars):
    top2 = torch.topk(b[0, g * n:(g + 1) * n], 2).values
    axes[2].annotate(f"{top2[0]:.2f}+{top2[1]:.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                     ha="center", va="bottom", fontsize=8)
axes[2].bar([0], [0], color="tab:green", label=f"kept (the best Kg = {Kg})")
axes[2].bar([0], [0], color="0.75", label="dropped")
axes[2].set(title="Steps 3-4: group score = sum of the two largest b in the group; the best 4 groups are kept",
            xlabel="group", ylabel="group score", ylim=(0, float(gs.max()) * 1.4))
axes[2].legend(loc="upper center", ncols=2)
plt.show()

# %% [markdown]
# ## Steps 5 to 8: chosen experts and their weights
#
# Step 5 takes the 8 largest `b` among the kept groups' experts, in descending order (ties: lower id
# first). Step 6 weights each by its *unbiased* `p`, renormalized to sum 1. Step 7 appends the shared
# expert's slot (id `E = 256`) with weight `1 / r`, and step 8 would multiply everything by `r` if the
# kernel applied the scaling itself. With `c = r` (the caller scales), the effective weights are
# `c * w`: the routed ones sum to `r = 2.5` and the shared one is exactly 1 (SPEC's invariant).

# %%
ids = expert_selection(b, kept, G, K)  # step 5  [1, K]
w = routed_weights(p, ids, cfg.renormalize)  # step 6
shared_ids, shared_w = shared_slots(cfg, 1, scores.device)  # step 7
topk_ids, topk_weights = route(scores, bias, cfg)  # all eight steps (step 8 off: the caller scales by r)
assert topk_ids[0, :K].tolist() == ids[0].tolist()
chosen = ids[0].tolist()

fig, axes = plt.subplots(2, 1, figsize=(11, 6.5), constrained_layout=True)
in_kept = torch.tensor([(e // n) in kept_set for e in range(E)])
axes[0].bar(xs[in_kept], b[0, in_kept], color="tab:orange", width=1.0, label="b, expert of a kept group")
axes[0].bar(xs[~in_kept], b[0, ~in_kept], color="0.8", width=1.0, label="b, expert of a dropped group")
axes[0].plot(chosen, b[0, chosen], "v", color="tab:red", markersize=8, label=f"chosen (top K = {K})")
for slot, e in enumerate(chosen):
    axes[0].annotate(str(slot), (e, float(b[0, e]) + 0.04), ha="center", fontsize=8, color="tab:red")
axes[0].set(title="Step 5: the 8 largest b of the kept groups (numbers: output slot)", xlabel="expert id",
            ylabel="biased score b", xlim=(-1, E), ylim=(0, 1.25))
axes[0].legend(loc="upper right", ncols=3)
labels = [f"{e}" for e in chosen] + [f"{E} (shared)"]
weights = torch.cat([w[0], shared_w[0]])
effective = r * weights
x = torch.arange(K + 1)
axes[1].bar(x - 0.2, weights, width=0.4, color="tab:blue", label="returned weight w (steps 6-7)")
axes[1].bar(x + 0.2, effective, width=0.4, color="tab:purple", label=f"effective weight c * w, c = r = {r}")
axes[1].axhline(1.0, color="tab:purple", ls="--", lw=1)
axes[1].set_xticks(x, labels)
axes[1].set(title=f"Steps 6-8: routed weights (unbiased p, renormalized) and the shared slot (1 / r); "
            f"routed effective sum = {float(effective[:K].sum()):.4f}",
            xlabel="output slot: expert id", ylabel="weight")
axes[1].legend(loc="upper center")
plt.show()
scaled = route(scores, bias, cfg.replace(apply_routed_scaling_factor_on_output=True))[1]  # step 8 on
print("step 8 on, weights times r:", [round(v, 4) for v in scaled[0].tolist()])

# %% [markdown]
# ## A batch: how the load spreads over the experts, per preset
#
# Route 2,048 tokens of random logits (N(0, 1), and a random bias 0.1 * N(0, 1) where the model has one)
# through each preset and count how many tokens each expert receives, relative to a perfectly even
# spread (`T * K / E`). Random logits would spread evenly; the curve bends where the *bias* favours some
# experts over others: a bias that is not tuned to the traffic unbalances the load.

# %%
presets = ["deepseek-v3", "kimi-k2", "glm-4.5", "moonlight-16b-a3b", "qwen3-moe", "gpt-oss-120b"]
fig, ax = plt.subplots(figsize=(9, 4.5), constrained_layout=True)
for name in presets:
    prob = fx.preset_problem(name, torch.float32, 2048, seed=11)
    c = prob.config
    ids_b, _ = route(prob.scores, prob.bias, c)
    load = torch.bincount(ids_b[:, : c.topk].flatten().long(), minlength=c.num_experts).float()
    load = load / (prob.num_rows * c.topk / c.num_experts)
    rank = (torch.arange(c.num_experts) + 0.5) / c.num_experts
    style = "-" if prob.bias is not None else "--"
    ax.plot(rank, load.sort(descending=True).values, style,
            label=f"{name} (E = {c.num_experts}, K = {c.topk}, {'bias' if prob.bias is not None else 'no bias'})")
ax.axhline(1.0, color="k", lw=0.8)
ax.set(title="Expert load per preset: 2,048 random tokens (dashed: no bias)",
       xlabel="experts, most to least loaded (fraction of E)", ylabel="load / even share", ylim=(0, None))
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## What the correction bias does: balancing the load without changing the weights
#
# Real traffic is not random: some experts are favoured by most tokens. Below, each expert gets a fixed
# popularity offset added to every token's logit, so without a bias a few experts take most of the load.
# DeepSeek-V3 balances it without an auxiliary loss: after each batch, every overloaded expert's bias
# goes down by a small step and every underloaded one's goes up. Because the bias only enters the
# *choice* (step 2) and never the weights (step 6 uses the unbiased `p`), this steers tokens away from
# busy experts without distorting what the chosen experts contribute.

# %%
tokens = 1024
popularity = 1.0 * torch.randn(E, generator=gen)  # a fixed per-expert preference shared by all tokens
logits = torch.randn(tokens, E, generator=gen) + popularity
step, history, learned = 0.01, [], torch.zeros(E)


def load_of(bias_now):
    ids_now, _ = route(logits, bias_now, cfg)
    counts = torch.bincount(ids_now[:, :K].flatten().long(), minlength=E).float()
    return counts / (tokens * K / E)


for _ in range(40):
    load = load_of(learned)
    history.append(float(load.max()))
    learned = learned - step * torch.sign(load - 1.0)  # the bias update rule (DeepSeek-V3, sec. 2.1.2)
before, after = load_of(torch.zeros(E)), load_of(learned)

fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
axes[0].bar(torch.arange(E), before.sort(descending=True).values, width=1.0, color="tab:red", alpha=0.6,
            label=f"bias 0: max {float(before.max()):.1f}x the even share")
axes[0].bar(torch.arange(E), after.sort(descending=True).values, width=1.0, color="tab:green", alpha=0.6,
            label=f"after 40 updates: max {float(after.max()):.1f}x")
axes[0].axhline(1.0, color="k", lw=0.8)
axes[0].set(title="Expert load with skewed traffic (1,024 tokens)", xlabel="experts, most to least loaded",
            ylabel="load / even share")
axes[0].legend()
axes[1].plot(range(1, len(history) + 1), history, "o-", markersize=3)
axes[1].axhline(1.0, color="k", lw=0.8)
axes[1].set(title=f"Bias updates (step {step}): the busiest expert's load", xlabel="update",
            ylabel="max load / even share", ylim=(0, None))
plt.show()
same_p = probabilities(logits, cfg.scoring_func)
ids_l, w_l = route(logits, learned, cfg)
p_chosen = torch.gather(same_p, 1, ids_l[:, :K].long())
assert torch.allclose(w_l[:, :K], p_chosen / p_chosen.sum(-1, keepdim=True), rtol=1e-5, atol=1e-6)
print("the weights are still the chosen experts' unbiased p, renormalized: checked for all", tokens, "tokens")

# %% [markdown]
# ## The invariant on a toy MoE layer
#
# With `c = 1` when r is applied on the output and `c = r` otherwise, combining the fused output (routed
# and shared slots, times `c`) equals the unfused layer `r * sum(w_i * E_i(x)) + shared(x)`.
# `reference/toy_layer.py` builds random expert matrices to check it end to end.

# %%
for apply in (False, True):
    c_cfg = cfg.replace(apply_routed_scaling_factor_on_output=apply)
    many = torch.randn(64, E, generator=gen)
    ids_, w_ = route(many, bias, c_cfg)
    layer = make_toy_moe(c_cfg, hidden=8, seed=1)
    x = torch.randn(64, 8, dtype=torch.float64, generator=gen)
    err = (layer.fused(x, ids_, w_) - layer.unfused(x, many, bias)).abs().max().item()
    print(f"apply_on_output={apply}: shared c * w = {c_cfg.effective_scale * w_[0, -1].item():.7f}, "
          f"max |fused - unfused| = {err:.1e}")
    assert err < 1e-5
assert output_scaling(topk_weights, cfg).equal(topk_weights)  # step 8 is off in the preset
