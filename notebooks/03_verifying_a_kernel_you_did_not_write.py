# %% [markdown]
# # Verifying a kernel you did not write
#
# moegate verifies other engines' routing kernels (FlashInfer, vLLM) through adapters with the reference's
# signature. What they do differently from SPEC is written up in `docs/peers.md`, and each finding is
# pinned as a fixture set under `tests/peer_findings/<peer>/`: the inputs, the reference's answer (`ids`,
# `weights`) and what the peer's kernel returned on a GPU (`peer_ids`, `peer_weights`), with the finding
# in words and the oracle rule it breaks. Replaying them needs no GPU: this notebook reads the recorded
# outputs, judges them with the oracle again, and shows the rows where each peer departs from SPEC.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from safetensors import safe_open

from moegate.properties import differential, oracle
from moegate.properties import fixtures as fx

plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True})
REPO = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "tests" / "fixtures" / "manifest.json").is_file())
FINDINGS_DIR = Path(os.environ.get("MOEGATE_PEER_FINDINGS", REPO / "tests" / "peer_findings"))

findings = []
for manifest in sorted(FINDINGS_DIR.glob("**/manifest.json")):
    for entry in fx.read_manifest(manifest.parent)["cases"]:
        case = fx.load_case(manifest.parent / entry["file"], sha256=entry.get("sha256"))
        item = {"case": case, "name": case.meta.get("peer", manifest.parent.parent.name),
                "finding": case.meta.get("finding", ""), "rule": case.meta.get("rule", ""),
                "error": case.meta.get("peer_error", ""), "peer": None, "violations": [], "diff": None}
        if case.peer_ids is not None:  # the peer returned an output: judge it again, at its weights' precision
            item["peer"] = (case.peer_ids, case.peer_weights)
            item["violations"] = oracle.check_routing(case.problem, *item["peer"], weight_dtype=case.weight_dtype)
            item["diff"] = differential.compare(case.problem, (case.ids, case.weights), item["peer"],
                                                tie_rows=case.tie_rows, weight_dtype=case.weight_dtype)
        findings.append(item)
if findings:
    print(f"{len(findings)} pinned findings in {FINDINGS_DIR}:")
    for item in findings:
        if item["peer"] is None:
            print(f"- {item['name']} / {item['case'].name}: {item['finding']} (its launcher refuses: {item['error'][:90]})")
            continue
        rules = sorted({v.rule for v in item["violations"]})
        print(f"- {item['name']} / {item['case'].name}: {item['finding']} (rule {item['rule']}; the oracle finds "
              f"{', '.join(rules) or 'nothing'}; {len(item['diff'].mismatched_rows)} of {item['case'].problem.num_rows} rows depart)")
else:
    print(f"No peer findings are recorded yet ({FINDINGS_DIR} holds no fixture set): the figures below are "
          "skipped. They are recorded on a GPU by the peer adapters (docs/peers.md).")

# %% [markdown]
# ## How much of each case departs from SPEC
#
# Per finding: the share of the case's rows where the peer's output differs from the reference's beyond
# the tolerances (ties accepted), and whether the oracle, which knows only SPEC, confirms the rule the
# finding names.

# %%
if findings:
    fig, ax = plt.subplots(figsize=(11, 0.32 * len(findings) + 1.6), constrained_layout=True)
    peers = sorted({item["name"] for item in findings})
    palette = dict(zip(peers, plt.cm.tab10.colors, strict=False))
    labels, shares, colors = [], [], []
    for item in findings:
        rows = max(1, item["case"].problem.num_rows)
        if item["peer"] is None:
            shares.append(100.0)
            labels.append(f"{item['name']} / {item['case'].name}: launcher refuses")
        else:
            shares.append(100 * len(item["diff"].mismatched_rows) / rows)
            confirmed = item["rule"] in {v.rule for v in item["violations"]}
            labels.append(f"{item['name']} / {item['case'].name}: [{item['rule']}]{'' if confirmed else ' (not confirmed)'}")
        colors.append(palette[item["name"]])
    bars = ax.barh(labels, shares, color=colors)
    ax.bar_label(bars, [f"{s:.0f}%" for s in shares], padding=3, fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.invert_yaxis()
    ax.set(title="Rows where each peer departs from SPEC, per pinned finding (H200 outputs)",
           xlabel="rows of the pinned case departing from SPEC (%)", xlim=(0, 118))
    plt.show()
else:
    print("skipped: no peer findings recorded")

# %% [markdown]
# ## What each peer returned
#
# One finding per peer, its first departing row slot by slot: the reference's ids and weights against the
# peer's (a NaN weight is drawn as 0). Ids are written under each slot (reference / peer), red where they
# differ. Below the figure, every finding's departure in the differential's words.

# %%
SHOWN = {"flashinfer-default": "sigmoid-underflow", "flashinfer-cake": "id-out-of-range", "vllm": "strided-rows"}
shown = []  # per peer: the finding named in SHOWN, else its first finding with a recorded output
for name in sorted({item["name"] for item in findings}):
    mine = [item for item in findings if item["name"] == name and item["peer"] is not None]
    pick = next((item for item in mine if item["case"].name == SHOWN.get(name)), mine[0] if mine else None)
    if pick is not None:
        shown.append(pick)
if shown:
    fig, axes = plt.subplots(1, len(shown), figsize=(6 * len(shown), 3.8), constrained_layout=True, squeeze=False)
    for ax, item in zip(axes.flat, shown, strict=True):
        case, (peer_ids, peer_w) = item["case"], item["peer"]
        bad = item["diff"].mismatched_rows
        row = bad[0] if bad else 0
        x = torch.arange(case.ids.shape[1])
        ax.bar(x - 0.2, case.weights[row], width=0.4, color="tab:green", label="reference (SPEC)")
        ax.bar(x + 0.2, torch.nan_to_num(peer_w[row], nan=0.0), width=0.4, color="tab:red", label=item["name"])
        top = max(float(case.weights[row].max()), float(torch.nan_to_num(peer_w[row], nan=0.0).max()), 1e-3)
        ax.set_ylim(0, 1.2 * top)
        ax.set_xticks(x, [f"{int(a)}\n{int(b)}" for a, b in zip(case.ids[row], peer_ids[row], strict=True)])
        for tick, a, b in zip(ax.get_xticklabels(), case.ids[row], peer_ids[row], strict=True):
            tick.set_color("tab:red" if int(a) != int(b) else "black")
        ax.set(title=f"{item['name']} / {case.name}, row {row}", xlabel="slot: expert id (reference / peer)",
               ylabel="weight (times r when r is applied)")
        ax.legend(fontsize=8)
    plt.show()
    for item in findings:
        if item["peer"] is not None and item["diff"] is not None and not item["diff"].ok:
            print(f"{item['name']} / {item['case'].name}:\n{item['diff'].format(max_rows=1)}\n")
else:
    print("skipped: no peer findings recorded")
