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
for manifest in sorted(FINDINGS_DIR.glob("*/manifest.json")):
    for entry in fx.read_manifest(manifest.parent)["cases"]:
        path = manifest.parent / entry["file"]
        case = fx.load_case(path, sha256=entry.get("sha256"))
        with safe_open(str(path), framework="pt") as f:
            peer = (f.get_tensor("peer_ids"), f.get_tensor("peer_weights"))
        judged = oracle.check_routing(case.problem, *peer)
        diff = differential.compare(case.problem, (case.ids, case.weights), peer, tie_rows=case.tie_rows)
        findings.append({"case": case, "peer": peer, "violations": judged, "diff": diff,
                         "name": case.meta.get("peer", manifest.parent.name), "finding": case.meta.get("finding", ""),
                         "rule": case.meta.get("rule", "")})
if findings:
    print(f"{len(findings)} pinned findings in {FINDINGS_DIR}:")
    for item in findings:
        rules = sorted({v.rule for v in item["violations"]})
        print(f"- {item['name']}: {item['finding']} (rule {item['rule']}; the oracle finds {', '.join(rules) or 'nothing'};"
              f" {len(item['diff'].mismatched_rows)} of {item['case'].problem.num_rows} rows depart)")
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
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(findings) + 1.8), constrained_layout=True)
    peers = sorted({item["name"] for item in findings})
    palette = dict(zip(peers, plt.cm.tab10.colors, strict=False))
    labels, shares = [], []
    for item in findings:
        rows = item["case"].problem.num_rows
        shares.append(100 * len(item["diff"].mismatched_rows) / max(1, rows))
        confirmed = item["rule"] in {v.rule for v in item["violations"]}
        labels.append(f"{item['name']}: [{item['rule']}]{'' if confirmed else ' (not confirmed)'}")
    bars = ax.barh(labels, shares, color=[palette[item["name"]] for item in findings])
    ax.bar_label(bars, [f"{s:.0f}%" for s in shares], padding=3)
    ax.invert_yaxis()
    ax.set(title="Rows where the peer departs from SPEC, per pinned finding", xlabel="rows departing (%)",
           xlim=(0, 115))
    plt.show()
else:
    print("skipped: no peer findings recorded")

# %% [markdown]
# ## What each peer returned
#
# For each finding, the first departing row slot by slot: the reference's ids and weights against the
# peer's. Ids are written under each slot (reference / peer), red where they differ.

# %%
if findings:
    cols = min(2, len(findings))
    rows_n = (len(findings) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(7 * cols, 3.6 * rows_n), constrained_layout=True,
                             squeeze=False)
    for ax, item in zip(axes.flat, findings, strict=False):
        case, (peer_ids, peer_w) = item["case"], item["peer"]
        bad = item["diff"].mismatched_rows
        row = bad[0] if bad else 0
        width = case.ids.shape[1]
        x = torch.arange(width)
        ax.bar(x - 0.2, case.weights[row], width=0.4, color="tab:green", label="reference (SPEC)")
        ax.bar(x + 0.2, peer_w[row], width=0.4, color="tab:red", label=item["name"])
        ax.set_xticks(x, [f"{int(a)}\n{int(b)}" for a, b in zip(case.ids[row], peer_ids[row], strict=True)])
        for tick, a, b in zip(ax.get_xticklabels(), case.ids[row], peer_ids[row], strict=True):
            tick.set_color("tab:red" if int(a) != int(b) else "black")
        ax.set(title=f"{item['name']}: {item['finding'][:70]}\nrow {row} of {case.name}",
               xlabel="slot: expert id (reference / peer)", ylabel="weight")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(findings):]:
        ax.set_visible(False)
    plt.show()
    for item in findings:
        print(f"{item['name']} / {item['case'].name}:\n{item['diff'].format(max_rows=2)}\n")
else:
    print("skipped: no peer findings recorded")
